"""HTTP serving of a saved cohortrec model: ``cohortrec serve --model DIR``.

A small ASGI application (Starlette, served by uvicorn; the optional extra
``pip install 'cohortrec[serve]'``) around the ``model/`` folder that
``cohortrec discover`` writes (:mod:`cohortrec.cli._bundle`).

Endpoints (JSON in and out):

* ``GET /recommend?user=ID&n=10`` - a known user's top-n from their history;
* ``POST /recommend`` ``{"items": [...], "n": 10, "ignore_unknown": false}`` -
  a cold-start user: the profile of the group their items point to
  (:meth:`cohortrec.GroupDiscovery.assign_items`), topped up with popular
  items; ``{"user": ID}`` in the body serves a known user as the GET does;
* ``POST /group`` ``{"items": [...]}`` or ``{"text": "..."}`` - the group;
* ``GET /healthz`` - liveness and what is loaded;
* ``GET /metrics`` - request counts and latency histograms (Prometheus text);
* ``POST /reload`` ``{"model": DIR}`` (optional) - loads the model (again) in
  the background and swaps it in atomically: requests in flight finish on
  the model they started with, none is dropped or sees half a model.

Bad input (unknown user or items, bad JSON, ``n`` out of range, wrong
types, oversized bodies) gets a 4xx with ``{"error": message}``; the server
never answers 500 to bad input and never stops on it.

This module sits at the top floor (with the CLI): it imports the CLI's
bundle loading (:func:`cohortrec.cli.load_bundle`) and the library; nothing
in the library imports it (the ``serve`` command of the CLI loads it by
name when run).
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import numpy as np

__all__ = ["MAX_ITEMS", "MAX_N", "ServerThread", "create_app", "load_state", "run"]

#: largest n a request may ask for
MAX_N = 1000
#: most items a cold-start request may list
MAX_ITEMS = 10_000
#: largest request body accepted, bytes
MAX_BODY = 1 << 20
#: latency histogram buckets, seconds (per-request work is sub-millisecond)
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


def _require() -> None:
    try:
        import prometheus_client  # noqa: F401, PLC0415
        import starlette  # noqa: F401, PLC0415
        import uvicorn  # noqa: F401, PLC0415
    except ImportError as exc:
        raise ImportError(f"cohortrec serve needs the 'serve' extra (pip install 'cohortrec[serve]'): {exc}") from None


class BadRequest(Exception):
    """A 4xx answer: ``status`` and a JSON body ``{"error": message, **extra}``."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


# ---------------------------------------------------------------------------
# the loaded model (immutable once built; swapped whole by /reload)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelState:
    """Everything one request needs, built once per (re)load."""

    bundle: Any
    users: dict[str, int]
    items: dict[str, int]
    item_ids: list[str]
    titles: list[str | None] | None
    disc_item_ids: list[Any]
    pop_order: np.ndarray
    profiles: list[tuple[np.ndarray, np.ndarray]]
    folder: str
    generation: int
    loaded_at: float = field(default_factory=time.time)


def _title(t: Any) -> str | None:
    if t is None or (isinstance(t, float) and math.isnan(t)):
        return None
    return str(t)


def load_state(path: str | Path, generation: int = 0, device: str = "cpu") -> ModelState:
    """Load a ``discover`` output folder and warm its serving caches."""
    from cohortrec.cli import load_bundle  # noqa: PLC0415

    b = load_bundle(path, device=device, with_discovery=True)
    rec = b.recommender
    users = {u: i for i, u in enumerate(b.user_ids.tolist())}
    items = {v: i for i, v in enumerate(b.item_ids.tolist())}
    pop = np.asarray(b.popularity, dtype=np.float64)
    pop_order = np.lexsort((np.arange(pop.size), -pop))
    pop_order = pop_order[pop[pop_order] > 0].astype(np.int64)
    P = getattr(rec, "profiles_", None)  # a GroupRecommender's group profiles (cold start)
    profiles = []
    for k in range(0 if P is None else P.shape[0]):  # each group's items best first (ties: smaller id)
        row = P[k]
        order = np.lexsort((row.indices, -row.data))
        profiles.append((row.indices[order].astype(np.int64), row.data[order].astype(np.float64)))
    titles = None if b.titles is None else [_title(t) for t in b.titles]
    disc = b.get_discovery()
    state = ModelState(b, users, items, b.item_ids.tolist(), titles, list(disc.interactions_.item_ids),
                       pop_order, profiles, str(b.folder), generation)
    if users:  # build the per-request caches now, not in the first request
        rec.recommend(0, N=1)
    disc.assign_items([])
    return state


# ---------------------------------------------------------------------------
# request handling (pure functions of a state; run in worker threads)
# ---------------------------------------------------------------------------
def _check_n(value: Any) -> int:
    if value is None:
        return 10
    if isinstance(value, bool):
        raise BadRequest(400, f"n must be an integer in [1, {MAX_N}], got {value!r}")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise BadRequest(400, f"n must be an integer in [1, {MAX_N}], got {value!r}") from None
    if not isinstance(value, int):
        raise BadRequest(400, f"n must be an integer in [1, {MAX_N}], got {value!r}")
    if not 1 <= value <= MAX_N:
        raise BadRequest(400, f"n must be an integer in [1, {MAX_N}], got {value}")
    return value


def _items_out(s: ModelState, ids: Any, scores: Any) -> list[dict[str, Any]]:
    item_ids = s.item_ids
    ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
    scores = scores.tolist() if hasattr(scores, "tolist") else list(scores)
    if s.titles is None:
        return [{"item": item_ids[i], "score": sc} for i, sc in zip(ids, scores)]
    titles = s.titles
    return [{"item": item_ids[i], "score": sc, "title": titles[i]} for i, sc in zip(ids, scores)]


def recommend_known(s: ModelState, user: Any, n: int) -> dict[str, Any]:
    """Top-n of a user of the model, from their history."""
    if not isinstance(user, (str, int)) or isinstance(user, bool):
        raise BadRequest(400, f"user must be a string id, got {type(user).__name__}")
    row = s.users.get(str(user))
    if row is None:
        raise BadRequest(404, f"unknown user {str(user)!r}: POST /recommend with the user's items for a "
                         "cold start")
    ids, scores = s.bundle.recommender.recommend(row, N=n)
    return {"user": str(user), "source": "history", "items": _items_out(s, ids, scores)}


def _item_columns(s: ModelState, items: Any, ignore_unknown: bool) -> np.ndarray:
    if not isinstance(items, list):
        raise BadRequest(400, f"items must be a JSON list of item ids, got {type(items).__name__}")
    if len(items) > MAX_ITEMS:
        raise BadRequest(400, f"items holds {len(items)} ids; at most {MAX_ITEMS} are accepted")
    cols, unknown = [], []
    for it in items:
        if isinstance(it, bool) or not isinstance(it, (str, int)):
            raise BadRequest(400, f"items must hold string (or integer) ids, got {it!r}")
        c = s.items.get(str(it))
        if c is None:
            unknown.append(str(it))
        else:
            cols.append(c)
    if unknown and not ignore_unknown:
        raise BadRequest(422, f"{len(unknown)} of the items are not in the model", unknown_items=unknown[:50])
    return np.unique(np.asarray(cols, dtype=np.int64))


def _group_of(s: ModelState, cols: np.ndarray) -> int:
    if cols.size == 0:
        return -1
    disc = s.bundle.get_discovery()
    return int(disc.assign_items([s.disc_item_ids[c] for c in cols]))


def recommend_cold(s: ModelState, items: Any, n: int, ignore_unknown: bool) -> dict[str, Any]:
    """Top-n for a user known only by some items: their group's profile, then popular items."""
    cols = _item_columns(s, items, ignore_unknown)
    g = _group_of(s, cols)
    taken = set(cols.tolist())
    ids: list[int] = []
    scores: list[float] = []
    source = "cold-start: most popular"
    gv = s.bundle.group_values
    if g >= 0:
        k = int(np.searchsorted(gv, g)) if gv.size else g
        if k < len(s.profiles):
            p_ids, p_sc = s.profiles[k]
            for i, sc in zip(p_ids.tolist(), p_sc.tolist()):
                if len(ids) >= n:
                    break
                if i not in taken and sc > 0:
                    ids.append(i)
                    scores.append(sc)
                    taken.add(i)
        source = f"cold-start: group {g}"
    if len(ids) < n:  # a small profile (or no group): popular items
        for i in s.pop_order.tolist():
            if len(ids) >= n:
                break
            if i not in taken:
                ids.append(i)
                scores.append(0.0)
                taken.add(i)
    out: dict[str, Any] = {"source": source, "group": g, "known_items": int(cols.size),
                           "items": _items_out(s, ids, scores)}
    if g >= 0:
        out["label"] = s.bundle.group_label(int(np.searchsorted(gv, g)) if gv.size else g)
    return out


def group_of(s: ModelState, body: dict[str, Any]) -> dict[str, Any]:
    """The group of a user given by items (or by text with a text view)."""
    gv = s.bundle.group_values
    if "items" in body:
        cols = _item_columns(s, body["items"], bool(body.get("ignore_unknown", False)))
        g = _group_of(s, cols)
        if g < 0:
            raise BadRequest(422, "none of the items is in the model: no group")
    elif "text" in body:
        text = body["text"]
        if not isinstance(text, str) or not text.strip():
            raise BadRequest(400, "text must be a non-empty string")
        if len(text) > MAX_BODY:
            raise BadRequest(400, "text is too long")
        disc = s.bundle.get_discovery()
        if getattr(disc, "text_encoder", None) is None:
            raise BadRequest(422, "this model has no text view (discover --encoder text+vae): give items")
        g = int(disc.assign_text([text])[0])
    else:
        raise BadRequest(400, 'give "items" (a list of item ids) or "text"')
    k = int(np.searchsorted(gv, g)) if gv.size else g
    return {"group": g, "label": s.bundle.group_label(k)}


# ---------------------------------------------------------------------------
# the ASGI application
# ---------------------------------------------------------------------------
def _query(raw: bytes) -> dict[str, str]:
    """The query string's parameters (first value of each; percent-decoded)."""
    from urllib.parse import unquote_plus  # noqa: PLC0415

    out: dict[str, str] = {}
    for part in raw.decode("latin-1").split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        if "%" in k or "+" in k:
            k = unquote_plus(k)
        if "%" in v or "+" in v:
            v = unquote_plus(v)
        out.setdefault(k, v)
    return out


class _App:
    """Holds the current state and the metrics; builds the Starlette app."""

    def __init__(self, model_dir: str | Path, device: str = "cpu", offload: bool = False) -> None:
        _require()
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram  # noqa: PLC0415

        self.model_dir = str(model_dir)
        self.device = device
        self.offload = offload
        self.state = load_state(model_dir, 0, device)
        self.registry = CollectorRegistry()
        self.requests = Counter("cohortrec_requests", "HTTP requests served", ["endpoint", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram("cohortrec_request_duration_seconds", "Time to answer a request",
                                 ["endpoint"], buckets=BUCKETS, registry=self.registry)
        self.generation = Gauge("cohortrec_model_generation", "Reloads of the model so far",
                                registry=self.registry)
        self.reloads = Counter("cohortrec_reloads", "Model reloads", ["result"], registry=self.registry)
        self._reload_lock: asyncio.Lock | None = None

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if not self.offload:
            return fn(*args)
        import anyio  # noqa: PLC0415

        return await anyio.to_thread.run_sync(fn, *args)

    def _instrument(self, endpoint: str, handler: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
        from starlette.responses import JSONResponse  # noqa: PLC0415

        async def wrapped(request: Any) -> Any:
            t0 = time.perf_counter()
            try:
                response = await handler(request)
            except BadRequest as exc:
                response = JSONResponse({"error": exc.message, **exc.extra}, status_code=exc.status)
            except Exception as exc:  # a bug, not bad input: still an answer, never a crash
                response = JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)
            self.latency.labels(endpoint).observe(time.perf_counter() - t0)
            self.requests.labels(endpoint, request.method, str(response.status_code)).inc()
            return response

        return wrapped

    @staticmethod
    async def _json(request: Any) -> dict[str, Any]:
        length = request.headers.get("content-length")
        if length is not None:
            try:
                if int(length) > MAX_BODY:
                    raise BadRequest(413, f"request body over {MAX_BODY} bytes")
            except ValueError:
                raise BadRequest(400, "bad Content-Length") from None
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise BadRequest(413, f"request body over {MAX_BODY} bytes")
        if not body.strip():
            return {}
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BadRequest(400, "the body must be a JSON object")
        return data

    # -- endpoints ---------------------------------------------------------
    async def get_recommend(self, request: Any) -> Any:
        from starlette.responses import JSONResponse  # noqa: PLC0415

        q = _query(request.scope.get("query_string", b""))
        user = q.get("user")
        if user is None or user == "":
            raise BadRequest(400, "give ?user=ID (or POST /recommend with items for a cold start)")
        n = _check_n(q.get("n"))
        s = self.state
        return JSONResponse(await self._run(recommend_known, s, user, n))

    async def post_recommend(self, request: Any) -> Any:
        from starlette.responses import JSONResponse  # noqa: PLC0415

        body = await self._json(request)
        n = _check_n(body.get("n"))
        s = self.state
        if "user" in body and body["user"] is not None and str(body["user"]) in s.users:
            return JSONResponse(await self._run(recommend_known, s, body["user"], n))
        if "items" not in body:
            if "user" in body:
                raise BadRequest(404, f"unknown user {str(body['user'])!r}: give the user's items for a cold start")
            raise BadRequest(400, 'give "items": the ids of the items the user interacted with')
        ignore = body.get("ignore_unknown", False)
        if not isinstance(ignore, bool):
            raise BadRequest(400, "ignore_unknown must be true or false")
        return JSONResponse(await self._run(recommend_cold, s, body["items"], n, ignore))

    async def post_group(self, request: Any) -> Any:
        from starlette.responses import JSONResponse  # noqa: PLC0415

        body = await self._json(request)
        s = self.state
        return JSONResponse(await self._run(group_of, s, body))

    async def healthz(self, request: Any) -> Any:
        from starlette.responses import JSONResponse  # noqa: PLC0415

        s = self.state
        rec = s.bundle.recommender
        return JSONResponse({"status": "ok", "model": s.folder, "generation": s.generation,
                             "loaded_at": s.loaded_at, "n_users": int(rec.n_users_), "n_items": int(rec.n_items_),
                             "n_groups": int(s.bundle.meta.get("n_groups", len(s.profiles)))})

    async def metrics(self, request: Any) -> Any:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: PLC0415
        from starlette.responses import Response  # noqa: PLC0415

        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    async def reload(self, request: Any) -> Any:
        from starlette.responses import JSONResponse  # noqa: PLC0415

        from cohortrec.cli import CLIError  # noqa: PLC0415

        body = await self._json(request)
        target = body.get("model", self.model_dir)
        if not isinstance(target, str) or not target:
            raise BadRequest(400, "model must be a folder path")
        if self._reload_lock is None:
            self._reload_lock = asyncio.Lock()
        async with self._reload_lock:  # one reload at a time; requests go on meanwhile
            import anyio  # noqa: PLC0415

            gen = self.state.generation + 1
            try:
                new = await anyio.to_thread.run_sync(load_state, target, gen, self.device)
            except (CLIError, OSError, ValueError, KeyError, TypeError) as exc:
                self.reloads.labels("failed").inc()
                raise BadRequest(422, f"could not load {target!r}: {exc}; still serving generation "
                                 f"{self.state.generation}") from None
            self.state = new  # one reference assignment: atomic for every reader
            self.model_dir = target
            self.generation.set(gen)
            self.reloads.labels("ok").inc()
        return JSONResponse({"status": "reloaded", "model": new.folder, "generation": new.generation})

    def build(self) -> Any:
        from starlette.applications import Starlette  # noqa: PLC0415
        from starlette.exceptions import HTTPException  # noqa: PLC0415
        from starlette.responses import JSONResponse  # noqa: PLC0415
        from starlette.routing import Route  # noqa: PLC0415

        i = self._instrument
        routes = [
            Route("/recommend", i("recommend", self.get_recommend), methods=["GET"]),
            Route("/recommend", i("recommend_cold", self.post_recommend), methods=["POST"]),
            Route("/group", i("group", self.post_group), methods=["POST"]),
            Route("/healthz", i("healthz", self.healthz), methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/reload", i("reload", self.reload), methods=["POST"]),
        ]

        async def http_error(request: Any, exc: Any) -> Any:
            self.requests.labels("other", request.method, str(exc.status_code)).inc()
            return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

        async def any_error(request: Any, exc: Exception) -> Any:
            return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)

        app = Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: any_error})
        app.state.cohortrec = self
        return app


def create_app(model_dir: str | Path, *, device: str = "cpu", offload: bool = False) -> Any:
    """The Starlette application serving the model folder ``model_dir``.

    Parameters
    ----------
    model_dir : str or Path
        A ``cohortrec discover --out`` folder, or its ``model/`` subfolder.
    device : {"cpu", "auto", "cuda"}, default "cpu"
        Where the encoder of cold-start users runs.
    offload : bool, default False
        Run the model calls in worker threads (the kernels release the GIL,
        so long requests, e.g. EASE for heavy users, are computed while the
        event loop parses other requests). By default they run on the event
        loop: a sub-millisecond call costs less than the hand-off to a thread
        (measured 1,230 vs 785 requests/s at concurrency 8 for ItemKNN on
        the loaded 2-core dev machine). Reloads always load in a thread.
    """
    return _App(model_dir, device, offload).build()


def _uvicorn_config(app: Any, host: str, port: int, log_level: str = "warning") -> Any:
    import uvicorn  # noqa: PLC0415

    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="off",
                          timeout_graceful_shutdown=5)


def run(model_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, *, device: str = "cpu",
        log_level: str = "info") -> None:
    """Serve ``model_dir`` on ``host:port`` until interrupted (``cohortrec serve``)."""
    import uvicorn  # noqa: PLC0415

    app = create_app(model_dir, device=device)
    uvicorn.Server(_uvicorn_config(app, host, port, log_level)).run()


class ServerThread:
    """A server on 127.0.0.1 and a free port, in a background thread (tests, benchmarks).

    Examples
    --------
    >>> with ServerThread("out") as srv:            # doctest: +SKIP
    ...     urllib.request.urlopen(srv.url + "/healthz")
    """

    def __init__(self, model_dir: str | Path, *, device: str = "cpu", offload: bool = False) -> None:
        import uvicorn  # noqa: PLC0415

        self.app = create_app(model_dir, device=device, offload=offload)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(_uvicorn_config(self.app, "127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def start(self, timeout: float = 30.0) -> ServerThread:
        self._thread.start()
        t0 = time.time()
        while not self._server.started:
            if not self._thread.is_alive() or time.time() - t0 > timeout:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
