"""The ``cohortrec`` command line (also ``python -m cohortrec``).

Subcommands:

* ``cohortrec discover [DATA]`` - find user groups in an event log, a dataset
  folder or the built-in synthetic data; write ``groups.parquet``,
  ``profiles.json``, ``profiles.md``, the fitted model (``model/``, no pickle)
  and ``report.html``;
* ``cohortrec recommend --model DIR --user ID`` - top-n items for known users,
  group-based cold start for new ones;
* ``cohortrec evaluate DATA`` - the holdout evaluation protocol as a table;
* ``cohortrec serve --model DIR`` - the model over HTTP (:mod:`cohortrec.serve`,
  the ``serve`` extra);
* ``cohortrec info`` - version, devices, CUDA build status, threads, optional
  dependencies.

Results go to stdout (tables), messages and progress bars to stderr. Bad
input exits with code 2 and a one-line message (``--debug`` shows the
traceback).
"""

from __future__ import annotations

from cohortrec.cli._common import CLIError
from cohortrec.cli._main import build_parser, main

__all__ = ["Bundle", "CLIError", "build_parser", "load_bundle", "main"]


def __getattr__(name: str) -> object:
    # the model folder reader, for cohortrec.serve; imported on first use so that
    # `cohortrec --help` does not load pandas
    if name in ("Bundle", "load_bundle"):
        from cohortrec.cli import _bundle  # noqa: PLC0415

        return getattr(_bundle, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
