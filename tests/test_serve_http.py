"""The HTTP server: real requests to a server started on 127.0.0.1 (a free port)."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

from cohortrec.cli import main  # noqa: E402
from cohortrec.serve import MAX_N, ServerThread  # noqa: E402

SMALL = ["--shop-users", "600", "--encoder", "svd", "--groups", "4", "-q"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("serve") / "out"
    assert main(["discover", "--out", str(out), *SMALL]) == 0
    return out


@pytest.fixture(scope="module")
def server(model_dir):
    srv = ServerThread(model_dir).start()
    yield srv
    srv.stop()


def call(srv, path, body=None, method=None, raw=None, headers=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(srv.url + path, data=data, method=method or ("POST" if data is not None else "GET"),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if r.headers.get_content_type() == "application/json" else text)
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        return e.code, json.loads(text)


def test_healthz(server):
    code, body = call(server, "/healthz")
    assert code == 200 and body["status"] == "ok" and body["n_users"] == 600 and body["generation"] == 0


def test_recommend_known_user_equals_library(server, model_dir):
    from cohortrec.cli._bundle import load_bundle

    b = load_bundle(model_dir)
    for row in (0, 17, 599):
        uid = b.user_ids[row]
        code, body = call(server, f"/recommend?user={uid}&n=7")
        assert code == 200 and body["source"] == "history"
        ids, scores = b.recommender.recommend(row, N=7)
        assert [e["item"] for e in body["items"]] == [b.item_ids[i] for i in ids]
        np.testing.assert_allclose([e["score"] for e in body["items"]], scores, atol=1e-6)
    # POST with a known user answers as the GET
    code, body2 = call(server, "/recommend", {"user": b.user_ids[599], "n": 7})
    assert code == 200 and body2 == body


def test_cold_start_and_group(server, model_dir):
    from cohortrec.cli._bundle import load_bundle

    b = load_bundle(model_dir)
    X = b.recommender.user_items_
    items = [b.item_ids[i] for i in X[3].indices[:5]]
    code, body = call(server, "/recommend", {"items": items, "n": 10})
    assert code == 200 and body["source"].startswith("cold-start") and len(body["items"]) == 10
    assert not set(items) & {e["item"] for e in body["items"]}
    g = b.get_discovery().assign_items([b.get_discovery().interactions_.item_ids[i] for i in X[3].indices[:5]])
    assert body["group"] == g
    code, gb = call(server, "/group", {"items": items})
    assert code == 200 and gb["group"] == g and isinstance(gb["label"], str)
    # unknown items: 422 unless ignored
    code, err = call(server, "/recommend", {"items": items + ["no-such-item"]})
    assert code == 422 and err["unknown_items"] == ["no-such-item"]
    code, body = call(server, "/recommend", {"items": items + ["no-such-item"], "ignore_unknown": True, "n": 3})
    assert code == 200 and len(body["items"]) == 3
    code, body = call(server, "/recommend", {"items": [], "n": 4})  # no items: popular ones
    assert code == 200 and body["group"] == -1 and len(body["items"]) == 4


@pytest.mark.parametrize("path,body,raw,status", [
    ("/recommend?user=nobody", None, None, 404),
    ("/recommend", None, None, 400),
    ("/recommend?user=u0000001&n=0", None, None, 400),
    ("/recommend?user=u0000001&n=-3", None, None, 400),
    (f"/recommend?user=u0000001&n={MAX_N + 1}", None, None, 400),
    ("/recommend?user=u0000001&n=10000000000000000000000", None, None, 400),
    ("/recommend?user=u0000001&n=abc", None, None, 400),
    ("/recommend?user=u0000001&n=1.5", None, None, 400),
    ("/recommend", None, b"{not json", 400),
    ("/recommend", None, b"\xff\xfe", 400),
    ("/recommend", None, b"[1, 2]", 400),
    ("/recommend", {"items": "i000001"}, None, 400),
    ("/recommend", {"items": [1.5]}, None, 400),
    ("/recommend", {"items": [{"a": 1}]}, None, 400),
    ("/recommend", {"items": ["i000001"], "n": "many"}, None, 400),
    ("/recommend", {"items": ["i000001"], "n": True}, None, 400),
    ("/recommend", {"items": ["i000001"], "ignore_unknown": "yes"}, None, 400),
    ("/recommend", {"user": "nobody"}, None, 404),
    ("/recommend", {"n": 3}, None, 400),
    ("/recommend", {"items": ["x"] * 20000}, None, 400),
    ("/group", {}, None, 400),
    ("/group", {"items": ["no-such"]}, None, 422),
    ("/group", {"items": ["no-such"], "ignore_unknown": True}, None, 422),
    ("/group", {"text": "space movies"}, None, 422),
    ("/group", {"text": 5}, None, 400),
    ("/reload", {"model": "/no/such/folder"}, None, 422),
    ("/reload", {"model": 5}, None, 400),
    ("/nowhere", None, None, 404),
])
def test_bad_requests_get_4xx_json(server, path, body, raw, status):
    code, out = call(server, path, body, raw=raw)
    assert code == status and isinstance(out, dict) and out["error"]
    assert call(server, "/healthz")[0] == 200  # still alive


def test_wrong_method_and_huge_body(server):
    code, out = call(server, "/healthz", raw=b"{}", method="POST")
    assert code == 405 and out["error"]
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 2097152\r\n\r\n")
    head = s.recv(4096).decode(errors="replace")
    s.close()
    assert head.startswith("HTTP/1.1 413")
    # a lying Content-Length is cut off by the server, not a crash
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"items\"")
    s.close()
    assert call(server, "/healthz")[0] == 200


def test_metrics(server):
    call(server, "/healthz")
    call(server, "/recommend?user=nobody")
    code, text = call(server, "/metrics")
    assert code == 200 and isinstance(text, str)
    assert 'cohortrec_requests_total{endpoint="healthz",method="GET",status="200"}' in text
    assert 'cohortrec_requests_total{endpoint="recommend",method="GET",status="404"}' in text
    assert 'cohortrec_request_duration_seconds_bucket{endpoint="recommend",le="0.001"}' in text
    assert "cohortrec_request_duration_seconds_count" in text


def test_reload_swaps_atomically_without_dropping_requests(model_dir):
    from cohortrec.cli._bundle import load_bundle

    b = load_bundle(model_dir)
    uid = b.user_ids[5]
    with ServerThread(model_dir, offload=True) as srv:  # model calls in worker threads, racing the reload
        expected = call(srv, f"/recommend?user={uid}&n=5")[1]
        errors, answers = [], []
        stop = threading.Event()

        def hammer():
            while not stop.is_set():
                code, body = call(srv, f"/recommend?user={uid}&n=5")
                (answers if code == 200 else errors).append(body)

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        for _ in range(3):
            code, body = call(srv, "/reload", {})
            assert code == 200 and body["status"] == "reloaded"
        code, body = call(srv, "/reload", {"model": str(model_dir)})
        assert code == 200 and body["generation"] == 4
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
        assert not errors and len(answers) > 10
        assert all(a == expected for a in answers)  # same model files: same answers throughout
        assert call(srv, "/healthz")[1]["generation"] == 4
        # a failed reload keeps serving the old model
        assert call(srv, "/reload", {"model": "/nope"})[0] == 422
        assert call(srv, f"/recommend?user={uid}&n=5") == (200, expected)


def test_cli_serve_errors(capsys, tmp_path):
    assert main(["serve", "--model", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["serve", "--model", str(tmp_path), "--port", "99999"]) == 2


def test_random_bodies_never_500(server):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=False),
                     st.text(max_size=12), st.sampled_from(["i000001", "u0000001", "items", "n"]))
    value = st.recursive(leaf, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=6), c,
                                                                                        max_size=4)), max_leaves=8)
    body = st.dictionaries(st.sampled_from(["items", "n", "user", "text", "ignore_unknown", "x"]), value, max_size=4)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(path=st.sampled_from(["/recommend", "/group"]), b=body)
    def check(path, b):
        code, out = call(server, path, b)
        assert code < 500, (path, b, out)

    check()
    assert call(server, "/healthz")[0] == 200
