"""Every command and snippet in README.md runs (the README is the user's first test)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _commands() -> list[str]:
    """Shell commands of the README, one per `&&`-joined step, comments stripped."""
    out = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line:
                out.extend(part.strip() for part in line.split("&&"))
    return out


def _cli() -> list[str]:
    exe = shutil.which("cohortrec")
    return [exe] if exe else [sys.executable, "-m", "cohortrec"]


def test_readme_has_the_two_commands_and_ci_runs_them():
    cmds = _commands()
    assert "python -m pytest" in cmds
    assert any(c.startswith("cohortrec discover") for c in cmds)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_cmds = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    # the installs CI does are the README's, in the same order, and CI runs the README's tests
    pips = [c for c in ci_cmds if c.startswith("pip install")]
    assert pips and [c for c in cmds if c.startswith("pip install")] == pips
    assert ci_cmds[-1] == "python -m pytest"


def test_python_snippet_runs(tmp_path):
    (snippet,) = _blocks("python")
    r = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "'ari'" in r.stdout and "label" in r.stdout
    page = (tmp_path / "groups.html").read_text(encoding="utf-8")
    assert 'id="groups"' in page


def test_cli_commands_run(tmp_path):
    """The README's `cohortrec ...` commands, in order, on the built-in data."""
    cmds = [c for c in _commands() if c.startswith("cohortrec ")]
    assert cmds[0].startswith("cohortrec discover")
    env = dict(os.environ, COLUMNS="120")
    for cmd in cmds:
        args = shlex.split(cmd)[1:]
        r = subprocess.run(_cli() + args, cwd=tmp_path, capture_output=True, text=True, timeout=900,
                           env=env)
        assert r.returncode == 0, f"{cmd}\n{r.stderr[-3000:]}"
        if args[0] == "recommend":
            assert len(r.stdout.strip().splitlines()) >= 2, r.stdout  # header + recommendations
    out = tmp_path / "demo"
    for name in ("groups.parquet", "profiles.json", "profiles.md", "report.html"):
        assert (out / name).is_file(), name
    assert (out / "model").is_dir()


@pytest.mark.parametrize("path", re.findall(r"\]\(([^)#]+)\)", README))
def test_links_exist(path):
    if "://" in path:
        pytest.fail(f"README links outside the repository: {path}")
    assert (ROOT / path).exists(), path
