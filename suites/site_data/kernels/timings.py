"""Kernel wall-clock timings over commits, from asv's results (``results/asv/<machine>/``)
and the pytest-benchmark files that name a clean commit (``results/kernels/``).

``load(results_dir)`` reads both into one ``Timings``: a point per benchmark, size,
implementation, machine, harness and commit, with the median seconds. Everything is read
from the files: asv's points are named by their benchmark (``AdamWStep``), the
pytest-benchmark ones by the ``kernel`` they record (``adamw``); the two harnesses time
by different methods, so they stay separate series. ``changes`` is the latest commit
against the previous one, per machine and harness. Reading is offline and deterministic.
"""

from __future__ import annotations

import ast
import itertools
import json
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from suites.site_data.common import natural_key

log = logging.getLogger(__name__)

#: A change of time beyond this fraction is marked in the changes table.
CHANGE_THRESHOLD = 0.10
ASV = "asv"
PYTEST_BENCHMARK = "pytest-benchmark"


@dataclass(frozen=True)
class Point:
    benchmark: str  # asv's benchmark class ("NGNStep") or pytest-benchmark's kernel ("ngn")
    size: str  # "8x4096x256"
    impl: str
    machine: str
    commit: str  # full hash
    date: float  # the commit's time, seconds since the epoch
    seconds: float
    source: str  # ASV or PYTEST_BENCHMARK


@dataclass
class Timings:
    points: list[Point] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # files skipped, and why

    @property
    def commits(self) -> list[str]:
        """Every commit with a point, oldest first."""
        dates = {p.commit: p.date for p in self.points}
        return sorted(dates, key=lambda c: (dates[c], c))

    def benchmarks(self) -> list[str]:
        return sorted({p.benchmark for p in self.points}, key=natural_key)


def _relative(path: Path) -> str:
    """``asv/<machine>/<file>`` or ``kernels/<file>``: the path under the results directory."""
    return "/".join(path.parts[-3:] if path.parent.parent.name == ASV else path.parts[-2:])


def read_asv(asv_dir: Path) -> Timings:
    """Points of every asv result file under ``asv_dir/<machine>/``: each ``time_*``
    benchmark with two parameters (implementation, size)."""
    timings = Timings()
    if not asv_dir.is_dir():
        return timings
    for machine_dir in sorted(p for p in asv_dir.iterdir() if p.is_dir()):
        if not (machine_dir / "machine.json").is_file():
            timings.problems.append(
                f"asv/{machine_dir.name}: results from an unknown machine (no machine.json); "
                "copy the machine.json that asv wrote beside them on the machine that ran "
                "them, or delete the folder")
            continue
        for path in sorted(machine_dir.glob("*.json")):
            if path.name != "machine.json":
                _read_asv_file(path, machine_dir.name, timings)
    return timings


def _read_asv_file(path: Path, machine: str, timings: Timings) -> None:
    try:
        data = json.loads(path.read_text())
        columns = data["result_columns"]
        commit, date = data["commit_hash"], data["date"] / 1e3
        results = data["results"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        timings.problems.append(f"{_relative(path)}: not an asv result file ({err!r})")
        return
    for name, row in sorted(results.items()):
        parts = name.split(".")
        if len(parts) < 2 or not parts[-1].startswith("time_"):
            continue
        entry = dict(zip(columns, row, strict=False))
        params = entry.get("params") or []
        if not isinstance(entry.get("result"), list) or len(params) != 2:
            continue  # failed on this commit (an import error), or not an (impl, size) grid
        grid = itertools.product(*[[ast.literal_eval(v) for v in values] for values in params])
        for (impl, size), seconds in zip(grid, entry["result"], strict=False):
            if seconds is None or not math.isfinite(seconds) or seconds <= 0:
                continue  # skipped (NotImplementedError) or failed on this commit
            timings.points.append(Point(parts[-2], str(size), str(impl), machine, commit, date,
                                        float(seconds), ASV))


def read_pytest_benchmark(kernels_dir: Path) -> Timings:
    """Points of the pytest-benchmark files of ``kernels_dir`` that name a clean commit; the
    machine is ``machine_info.label``, else the file name's ``<machine>-<date>.json``."""
    timings = Timings()
    for path in sorted(kernels_dir.glob("*.json")) if kernels_dir.is_dir() else []:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            timings.problems.append(f"{_relative(path)}: unreadable ({err!r})")
            continue
        if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
            continue  # another kind of file (the static kernel report)
        commit_info = data.get("commit_info") or {}
        commit, when = commit_info.get("id"), commit_info.get("time")
        if not commit or not when or commit_info.get("dirty"):
            continue  # no commit, or a working tree with changes: not a point in history
        date = datetime.fromisoformat(when).timestamp()
        machine = (data.get("machine_info") or {}).get("label") or path.stem.rsplit("-", 1)[0]
        for bench in data["benchmarks"]:
            extra, stats = bench.get("extra_info") or {}, bench.get("stats") or {}
            seconds = stats.get("median")
            if not seconds or "kernel" not in extra:
                continue
            size = "x".join(map(str, extra.get("size") or []))
            timings.points.append(Point(str(extra["kernel"]), size, str(extra.get("impl")),
                                        machine, commit, date, float(seconds),
                                        PYTEST_BENCHMARK))
    return timings


def load(results_dir: str | Path) -> Timings:
    """asv's and pytest-benchmark's points of ``results_dir``."""
    results_dir = Path(results_dir)
    asv = read_asv(results_dir / ASV)
    pytest = read_pytest_benchmark(results_dir / "kernels")
    points = sorted(asv.points + pytest.points, key=lambda p: (p.date, p.commit, _key(p)))
    timings = Timings(points, asv.problems + pytest.problems)
    for problem in timings.problems:
        log.warning("kernel timings: %s", problem)
    return timings


def _key(p: Point) -> tuple:
    return (p.benchmark, p.size, p.impl, p.machine, p.source, p.commit)


def changes(timings: Timings, threshold: float = CHANGE_THRESHOLD) -> list[dict]:
    """Per benchmark, size, implementation, machine and harness: the latest commit against
    the one before it (in commit order), with ``change`` = new time / old − 1 and
    ``marked`` when it is beyond ``threshold`` either way."""
    order = {c: i for i, c in enumerate(timings.commits)}
    per_run: dict[tuple[str, str], set[str]] = {}
    for p in timings.points:
        per_run.setdefault((p.machine, p.source), set()).add(p.commit)
    by_key = {_key(p): p for p in timings.points}
    rows = []
    for (machine, source), commits in sorted(per_run.items()):
        if len(commits) < 2:
            continue
        before, after = sorted(commits, key=order.get)[-2:]
        series = sorted({(p.benchmark, p.size, p.impl) for p in timings.points
                         if (p.machine, p.source) == (machine, source)},
                        key=lambda s: (natural_key(s[0]), natural_key(s[1]), s[2]))
        for benchmark, size, impl in series:
            old = by_key.get((benchmark, size, impl, machine, source, before))
            new = by_key.get((benchmark, size, impl, machine, source, after))
            if old is None or new is None:
                continue
            change = new.seconds / old.seconds - 1
            rows.append({
                "benchmark": benchmark, "size": size, "impl": impl, "machine": machine,
                "source": source, "before": before, "after": after,
                "seconds_before": old.seconds, "seconds_after": new.seconds,
                "change": change, "marked": abs(change) > threshold,
            })
    return rows


def short(commit: str) -> str:
    return commit[:8]
