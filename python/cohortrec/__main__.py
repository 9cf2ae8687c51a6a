"""``python -m cohortrec``: the ``cohortrec`` command line (see :mod:`cohortrec.cli`)."""

from __future__ import annotations

from cohortrec.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
