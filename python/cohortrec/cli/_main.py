"""Argument parsing and dispatch of the ``cohortrec`` command."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from cohortrec._validation import DEVICES
from cohortrec._version import __version__
from cohortrec.cli._common import CLIError, Console, one_line

__all__ = ["build_parser", "main"]

DEFAULT_OUT = "cohortrec-output"

EPILOG = """examples:
  cohortrec discover                                  # built-in synthetic shop -> cohortrec-output/report.html
  cohortrec discover ratings.csv --user-col customer --item-col sku --out shop-groups
  cohortrec discover path/to/ml-latest-small --groups 12
  cohortrec recommend --model cohortrec-output --user u0000042 -n 10
  cohortrec recommend --model cohortrec-output --user new-visitor --items i000017,i000230
  cohortrec evaluate path/to/ml-latest-small --models popularity,ease,group
  cohortrec serve --model cohortrec-output --port 8000        # HTTP: /recommend, /group, /metrics
  cohortrec info
"""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see '{self.prog} --help')\n")


def _groups(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or an integer >= 1, got {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not (v > 0 and v != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return v


def _port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number in [0, 65535], got {text!r}") from None
    if not 0 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number in [0, 65535], got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    """The ``cohortrec`` argument parser (subcommands discover, recommend, evaluate, info)."""
    from cohortrec.cli._data import DEFAULT_SHOP_USERS  # noqa: PLC0415
    from cohortrec.cli._discover import TRUST_MAX_USERS  # noqa: PLC0415

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true",
                        help="no progress messages or bars on stderr (results still go to stdout)")
    common.add_argument("--debug", action="store_true", help="show the full traceback on errors")

    data = argparse.ArgumentParser(add_help=False)
    g = data.add_argument_group("data")
    g.add_argument("data", nargs="?", metavar="DATA", default=None,
                   help="a CSV/TSV/Parquet event log, or a dataset folder (MovieLens 100k/1M/latest, Last.fm "
                        "HetRec 2011); omitted: the built-in synthetic shop data")
    g.add_argument("--user-col", metavar="COL", help="user id column of an event log (default: auto-detected)")
    g.add_argument("--item-col", metavar="COL", help="item id column (default: auto-detected)")
    g.add_argument("--weight-col", metavar="COL",
                   help="numeric weight column, e.g. rating or count (default: auto-detected; 'none' = 1 per event)")
    g.add_argument("--time-col", metavar="COL", help="event time column (default: auto-detected)")
    g.add_argument("--shop-users", type=_positive_int, default=DEFAULT_SHOP_USERS, metavar="N",
                   help=f"users in the built-in synthetic data (default {DEFAULT_SHOP_USERS})")

    device = argparse.ArgumentParser(add_help=False)
    device.add_argument("--device", choices=DEVICES, default="auto",
                        help="where the kernels run: auto = CUDA when built and a GPU is visible, else CPU")

    parser = _Parser(prog="cohortrec", description="Discover user groups in interaction data and recommend "
                     "with them.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"cohortrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("discover", parents=[data, device, common], help="find user groups, profile them, "
                       "save a model and an HTML report",
                       description="Find user groups in DATA, describe them, and write DIR/groups.parquet, "
                       "profiles.json, profiles.md, model/ and report.html.")
    d.add_argument("--groups", type=_groups, default="auto", metavar="auto|N",
                   help="number of groups, or 'auto' to choose it (default auto)")
    d.add_argument("--encoder", choices=("auto", "vae", "svd", "text+vae"), default="auto",
                   help="user embeddings: svd, vae (Mult-VAE, needs torch), text+vae (adds item text; needs "
                        "sentence-transformers); auto (default) = the library's default, svd refined by a "
                        "multinomial mixture, the best worst case over planted worlds")
    d.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output folder (default {DEFAULT_OUT})")
    d.add_argument("--evaluate", action="store_true",
                   help="also run the evaluation protocol (popularity vs group recommender) for the report")
    d.add_argument("--trust", action=argparse.BooleanOptionalAction, default=None,
                   help="measure how much to trust the groups (stability across seeds and subsamples of users, "
                        "profiles on held-out interactions) for report.html and profiles.json; default: on for "
                        f"data of up to {TRUST_MAX_USERS:,} users with the svd encoder")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run on an existing Dask cluster (e.g. tcp://host:8786); DATA is then a Parquet file or "
                        "folder read by the workers, and the output is groups.parquet, profiles.json/md and "
                        "recommendations/ (needs cohortrec[dask])")
    d.add_argument("--scheduler-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for the scheduler to answer (default 10)")
    p = d.add_argument_group("privacy of the published profiles (profiles.json, profiles.md, report.html)")
    p.add_argument("--min-group-size", type=_positive_int, default=None, metavar="N",
                   help="publish only figures backed by at least N distinct users: smaller groups, items, "
                        "categories and values are suppressed (default 10 when --epsilon is given)")
    p.add_argument("--epsilon", type=_positive_float, default=None, metavar="E",
                   help="differential privacy: add calibrated noise to every published count, share and mean, "
                        "spending a total budget E (needs diffprivlib: pip install 'cohortrec[privacy]')")
    d.set_defaults(func="discover")

    r = sub.add_parser("recommend", parents=[device, common], help="top-n items for users from a saved model",
                       description="Recommend with a model written by 'cohortrec discover'. Users not in the "
                       "model get cold-start recommendations: from the group their --items point to, or the "
                       "most popular items; the 'source' column says which.")
    r.add_argument("--model", required=True, metavar="DIR", help="the --out folder of 'cohortrec discover'")
    r.add_argument("--user", metavar="ID", help="one user id")
    r.add_argument("--users-file", metavar="FILE", help="user ids, one per line ('-' = stdin)")
    r.add_argument("-n", type=int, default=10, metavar="N", help="items per user (default 10)")
    r.add_argument("--items", metavar="IDS",
                   help="comma-separated item ids a new user interacted with (cold start by group)")
    r.add_argument("--format", choices=("tsv", "csv", "json"), default="tsv", help="output format (default tsv)")
    r.set_defaults(func="recommend")

    e = sub.add_parser("evaluate", parents=[data, device, common], help="compare recommenders with a fixed "
                       "holdout protocol",
                       description="Positives (MovieLens ratings >= 4, else any interaction), users with >= 5 "
                       "positives, 20%% per-user random holdout with a fixed seed, full ranking with training "
                       "items excluded; NDCG@10, Recall@20, Precision@10, Coverage@10.")
    e.add_argument("--models", default="all",
                   help="comma-separated: popularity, userknn, itemknn, rp3beta, ease, group, or all "
                        "(default all)")
    e.add_argument("--min-value", type=float, default=None, metavar="X",
                   help="interactions with value >= X are positives (default: 4 for MovieLens, else any)")
    e.add_argument("--seed", type=int, default=42, help="holdout seed (default 42)")
    e.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"folder for evaluation.csv and evaluation.md (default {DEFAULT_OUT}; '' = do not save)")
    e.set_defaults(func="evaluate")

    sv = sub.add_parser("serve", parents=[device, common], help="serve a saved model over HTTP (needs the "
                        "'serve' extra)",
                        description="Serve a model written by 'cohortrec discover' over HTTP (Starlette + uvicorn: "
                        "pip install 'cohortrec[serve]'): GET /recommend?user=ID&n=10, POST /recommend "
                        "{\"items\": [...]}, POST /group, GET /healthz, GET /metrics, POST /reload.")
    sv.add_argument("--model", required=True, metavar="DIR", help="the --out folder of 'cohortrec discover'")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sv.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    sv.set_defaults(func="serve")

    i = sub.add_parser("info", parents=[common], help="version, devices, CUDA status, threads, optional parts")
    i.add_argument("--json", action="store_true", help="as JSON")
    i.set_defaults(func="info")
    return parser


def _run(args: argparse.Namespace, console: Console) -> int:
    if args.func == "discover":
        from cohortrec.cli._discover import run_discover  # noqa: PLC0415

        return run_discover(args, console)
    if args.func == "recommend":
        from cohortrec.cli._recommend import run_recommend  # noqa: PLC0415

        return run_recommend(args, console)
    if args.func == "evaluate":
        from cohortrec.cli._evaluate import run_evaluate  # noqa: PLC0415

        return run_evaluate(args, console)
    if args.func == "serve":
        import importlib  # noqa: PLC0415

        serve = importlib.import_module("cohortrec.serve")  # the top floor, loaded by name
        serve.run(args.model, args.host, args.port, device="cpu" if args.device == "cpu" else "auto",
                  log_level="warning" if args.quiet else "info")
        return 0
    from cohortrec.cli._info import run_info  # noqa: PLC0415

    return run_info(args, console)


_BAD_INPUT = (CLIError, FileNotFoundError, NotADirectoryError, IsADirectoryError, ValueError, KeyError,
              TypeError, ImportError)


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return one_line(exc.args[0])
    text = one_line(exc)
    if isinstance(exc, CLIError):
        return text
    return f"{text} ({type(exc).__name__})" if text else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``cohortrec`` command; returns the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 for bad input (one-line message on stderr), 1 for
        other failures, 130 when interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:  # --help, --version, or a usage error (already printed)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    console = Console(quiet=args.quiet)
    with warnings.catch_warnings():
        if not args.debug:
            def show(message: Any, category: Any, filename: Any, lineno: Any, file: Any = None,
                     line: Any = None) -> None:
                console.warn(str(message))

            warnings.showwarning = show
        try:
            return _run(args, console)
        except KeyboardInterrupt:
            print("cohortrec: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:
            if args.debug:
                raise
            code = 2 if isinstance(exc, _BAD_INPUT) or type(exc).__name__ == "DeviceUnavailableError" else 1
            hint = "" if code == 2 else " (run with --debug for the traceback)"
            print(f"cohortrec: error: {_message(exc)}{hint}", file=sys.stderr)
            return code
