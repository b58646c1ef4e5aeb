"""asv catches a regression: a throwaway repository gets two commits of this project, the
second with a delay injected into ``kernels.optim.NGN.step``, and ``asv continuous``
must flag NGN's step, and nothing else, among the benchmarks it runs.

Slow (``make test-asv``, also run by ``.ci/run``): asv builds and installs both commits,
and on a machine without ``bench/.asv/env`` it first creates the virtualenv there (the
pinned torch and the suite's imports), which later runs and ``make asv-history`` reuse.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MACHINE = "asv-regression-test"
# NGN (slowed), SGD (torch.optim: no project code) and the scan forward (project code
# the commit leaves alone). The factor is wide so that a shared CPU's noise (a sub-ms
# step was seen to take 4.3x as long in one run) does not pass for a change; the delay
# is wider still (300 ms against NGN's slowest case here, about 12-25 ms: 12x or more).
BENCHMARKS = r"NGNStep|SGDStep|ScanForward\."
FACTOR = "10"
DELAY = '''

_undelayed_ngn_step = NGN.step


def _delayed_ngn_step(self, *args, **kwargs):  # the regression asv must catch
    import time

    time.sleep(0.3)
    return _undelayed_ngn_step(self, *args, **kwargs)


NGN.step = _delayed_ngn_step
'''

pytestmark = [
    pytest.mark.slow,
    pytest.mark.asv,
    pytest.mark.skipif(shutil.which("git") is None, reason="asv needs git"),
]


def git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid",
               "-c", "commit.gpgsign=false", *args]
    return subprocess.run(command, cwd=repo, check=True, capture_output=True,
                          text=True).stdout


def project_files() -> list[str]:
    """The checkout's files as git sees them (committed or not), without results/."""
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    return [f for f in listed.split("\0")
            if f and not f.startswith("results/") and (ROOT / f).is_file()]


def throwaway_repository(repo: Path) -> None:
    from asv.util import load_json

    for name in project_files():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, repo / name)
    config = load_json(str(ROOT / "asv.conf.json"), js_comments=True)
    config.update(env_dir=str(ROOT / "bench" / ".asv" / "env"), results_dir="results/asv",
                  html_dir="html")
    (repo / "asv.conf.json").write_text(json.dumps(config, indent=1))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the project as it is")
    optim = repo / "kernels" / "optim" / "__init__.py"
    optim.write_text(optim.read_text() + DELAY)
    git(repo, "commit", "-q", "-am", "NGN's step sleeps 300 ms")


def flagged(output: str) -> dict[str, str]:
    """asv continuous's changed rows: benchmark (parameters) -> '+' (slower) or '-'."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] in "+-!" and cells[0] and "." in cells[4]:
            rows[re.sub(r"\s+", " ", cells[4])] = cells[0]
    return rows


def test_asv_continuous_flags_the_slowed_benchmark_only(tmp_path):
    repo, home = tmp_path / "repo", tmp_path / "home"
    repo.mkdir()
    home.mkdir()
    throwaway_repository(repo)
    env = {**os.environ, "HOME": str(home)}  # asv's machine file goes here
    asv = [sys.executable, "-m", "asv"]
    subprocess.run([*asv, "machine", "--machine", MACHINE, "--yes"], cwd=repo, env=env,
                   check=True, capture_output=True)
    run = subprocess.run(
        [*asv, "continuous", "main~1", "main", "--factor", FACTOR, "--machine", MACHINE,
         "-b", BENCHMARKS],
        cwd=repo, env=env, capture_output=True, text=True, timeout=1500,
    )
    output = run.stdout + run.stderr
    rows = flagged(output)
    slowed = {f"benchmarks.kernels.NGNStep.time_step('ref', '{size}')"
              for size in ("1x1048576", "1x16777216", "1000x16384")}
    assert rows == dict.fromkeys(slowed, "+"), output
    assert run.returncode == 1, output  # asv continuous: 1 when something got slower
    assert "PERFORMANCE DECREASED" in output
    ran = sorted(p.name for p in (repo / "results" / "asv" / MACHINE).glob("*.json"))
    assert len(ran) == 3  # machine.json and one result file per commit
