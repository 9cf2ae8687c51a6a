"""The linters pass: ruff on the Python code, clang-format on the C++/CUDA code.

Configurations: ``[tool.ruff]`` in pyproject.toml and ``.clang-format``. The
tools come with the ``test`` extra; the checks skip where they are missing
(a source tree without the extra), never where they find something.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> list[str]:
    exe = shutil.which(name) or (str(Path(sys.executable).parent / name)
                                 if (Path(sys.executable).parent / name).exists() else None)
    if exe is None:
        pytest.skip(f"{name} is not installed (pip install '.[test]')")
    return [exe]


def test_ruff():
    proc = subprocess.run(_tool("ruff") + ["check", "python", "tests", "benchmarks"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_clang_format():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = subprocess.run(["git", "ls-files", "csrc/*.cpp", "csrc/*.hpp", "csrc/*.inc", "csrc/*.cu", "csrc/*.cuh"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert files
    proc = subprocess.run(_tool("clang-format") + ["--dry-run", "--Werror", *files], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
