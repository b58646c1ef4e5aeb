"""The README's "Adding a suite" section, followed word for word: the suite it shows is
discovered from a directory in ``$LSB_SUITE_PATH``, runs, and gets its page on the site."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_suite() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- adding-a-suite -->\n```python\n(.*?)```\n<!-- /adding-a-suite -->",
                      text, re.S)
    assert block, "README.md lost its 'Adding a suite' example"
    return block.group(1)


def lsb(*args: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "suites.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow
def test_a_suite_from_the_readme_is_discovered_run_and_shown(tmp_path):
    package = tmp_path / "my-suites" / "tiny"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(readme_suite())
    env = {**os.environ, "LSB_SUITE_PATH": str(tmp_path / "my-suites"),
           "PYTHONPATH": str(ROOT)}

    listed = lsb("list", env=env, cwd=tmp_path)
    assert "tiny/bowl" in listed and "chain/deep-mlp" in listed  # beside the built-ins

    ran = lsb("run", "tiny", "--optimizer", "sgd", "--budget", "smoke", "-j", "1", env=env,
              cwd=tmp_path)
    assert "1 tasks x 1 optimizers" in ran
    runs = sorted((tmp_path / "results" / "runs" / "tiny" / "bowl" / "sgd").glob("*.json"))
    # sgd's 7 step sizes on the tuning seed, 1 evaluation seed, then the tuned step size
    # × 2^k for k = −3 … 3 where the grid does not hold it (0.8 = 0.1 × 8: three new ones).
    assert len(runs) == 11

    lsb("site", "build", env=env, cwd=tmp_path)
    page = (tmp_path / "site" / "build" / "suite" / "tiny.html").read_text()
    assert "quadratic bowl that any optimizer should empty" in page
    assert 'href="suite/tiny.html"' in (tmp_path / "site" / "build" / "index.html").read_text()
    assert "½‖x‖² from x = (1 … 2)." in (tmp_path / "site/build/task/tiny--bowl.html").read_text()
