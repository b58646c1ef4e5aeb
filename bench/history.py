"""Kernel throughput over commits, from asv's results and pytest-benchmark's JSON files.

``load(results_dir)`` reads ``results_dir/asv/<machine>/`` (asv's result files, one per
commit) and ``results_dir/kernels/*.json`` (pytest-benchmark files that name a clean
commit) into one ``History``: a point per kernel, size, implementation, machine and
commit, with the median time, achieved GB/s (the case's bytes model over the time) and
the device's peak bandwidth where the machine's label names a device with a datasheet
figure. Where both harnesses timed the same case on the same machine and commit, asv's
point is kept. ``changes`` is the latest commit against the previous one, per machine;
``figure`` draws one kernel's history, a panel per size, one line per implementation
and machine. Reading is offline and deterministic: no clock, no network, sorted input.
"""

from __future__ import annotations

import ast
import itertools
import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench import cases

log = logging.getLogger(__name__)

#: A change of throughput beyond this fraction is marked in the changes table.
CHANGE_THRESHOLD = 0.10
ASV = "asv"
PYTEST_BENCHMARK = "pytest-benchmark"


@dataclass(frozen=True)
class Point:
    kernel: str
    size: str  # "8x4096x256"
    impl: str
    machine: str
    commit: str  # full hash
    date: float  # the commit's time, seconds since the epoch
    seconds: float
    gbps: float
    peak_gbps: float | None
    source: str  # ASV or PYTEST_BENCHMARK

    @property
    def peak_fraction(self) -> float | None:
        return self.gbps / self.peak_gbps if self.peak_gbps else None


@dataclass
class History:
    points: list[Point] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # files skipped, and why

    @property
    def commits(self) -> list[str]:
        """Every commit with a point, oldest first."""
        dates = {p.commit: p.date for p in self.points}
        return sorted(dates, key=lambda c: (dates[c], c))

    def kernels(self) -> list[str]:
        present = {p.kernel for p in self.points}
        return [k for k in cases.IMPLS if k in present]


def _relative(path: Path) -> str:
    """``asv/<machine>/<file>`` or ``kernels/<file>``: the path under the results
    directory, so that messages read the same wherever the directory lies."""
    return "/".join(path.parts[-3:] if path.parent.parent.name == ASV else path.parts[-2:])


def _case_gbps(kernel: str, impl: str, size: str, seconds: float) -> float:
    case = cases.Case(kernel, impl, tuple(int(s) for s in size.split("x")))
    return cases.bytes_moved(case) / seconds / 1e9


def _asv_kernels() -> dict[str, str]:
    """asv benchmark class name -> kernel (``AdamWStep`` -> ``adamw``)."""
    from bench.benchmarks import kernels as suite

    return {name: cls.kernel for name, cls in vars(suite).items()
            if isinstance(cls, type) and getattr(cls, "kernel", "")}


def read_asv(asv_dir: Path) -> History:
    """Points of every asv result file under ``asv_dir/<machine>/``."""
    history = History()
    if not asv_dir.is_dir():
        return history
    kernel_of = _asv_kernels()
    for machine_dir in sorted(p for p in asv_dir.iterdir() if p.is_dir()):
        if not (machine_dir / "machine.json").is_file():
            history.problems.append(
                f"asv/{machine_dir.name}: results from an unknown machine (no machine.json); "
                "copy the machine.json that asv wrote beside them on the machine that ran "
                "them, or delete the folder")
            continue
        machine = machine_dir.name
        peak = cases.peak_gbps(machine)
        for path in sorted(machine_dir.glob("*.json")):
            if path.name == "machine.json":
                continue
            try:
                data = json.loads(path.read_text())
                columns = data["result_columns"]
                commit, date = data["commit_hash"], data["date"] / 1e3
                results = data["results"]
            except (OSError, ValueError, KeyError, TypeError) as err:
                history.problems.append(f"{_relative(path)}: not an asv result file ({err!r})")
                continue
            for name, row in sorted(results.items()):
                parts = name.split(".")
                kernel = kernel_of.get(parts[-2]) if len(parts) >= 2 else None
                if kernel is None or parts[-1] != "time_step":
                    continue
                entry = dict(zip(columns, row, strict=False))
                if not isinstance(entry.get("result"), list):
                    continue  # the whole benchmark failed on this commit (an import error)
                grid = itertools.product(*[[ast.literal_eval(v) for v in values]
                                           for values in entry["params"]])
                for (impl, size), seconds in zip(grid, entry["result"], strict=False):
                    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
                        continue  # skipped (NotImplementedError) or failed on this commit
                    try:
                        gbps = _case_gbps(kernel, impl, size, seconds)
                    except ValueError:
                        continue  # a kernel that the current bytes model no longer has
                    history.points.append(Point(kernel, size, impl, machine, commit, date,
                                                seconds, gbps, peak, ASV))
    return history


def read_pytest_benchmark(kernels_dir: Path) -> History:
    """Points of the pytest-benchmark files of ``kernels_dir`` that name a clean commit;
    the machine is ``machine_info.label`` (``bench/conftest.py``), else the file name's
    ``<machine>-<date>.json`` (as ``make bench`` and ``bench/gpu.sh`` name them)."""
    history = History()
    for path in sorted(kernels_dir.glob("*.json")) if kernels_dir.is_dir() else []:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            history.problems.append(f"{_relative(path)}: unreadable ({err!r})")
            continue
        if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
            continue  # another kind of file (the static kernel report)
        commit_info, benchmarks = data.get("commit_info") or {}, data["benchmarks"]
        commit, when = commit_info.get("id"), commit_info.get("time")
        if not commit or not when or commit_info.get("dirty"):
            continue  # no commit, or a working tree with changes: not a point in history
        date = datetime.fromisoformat(when).timestamp()
        machine = (data.get("machine_info") or {}).get("label") or path.stem.rsplit("-", 1)[0]
        for bench in benchmarks:
            extra, stats = bench.get("extra_info") or {}, bench.get("stats") or {}
            seconds = stats.get("median")
            if not seconds or "kernel" not in extra:
                continue
            size = "x".join(map(str, extra["size"]))
            peak = extra.get("peak_gbps") or cases.peak_gbps(machine)
            try:
                gbps = _case_gbps(extra["kernel"], extra["impl"], size, seconds)
            except ValueError:
                continue  # a kernel that the current bytes model no longer has
            history.points.append(Point(extra["kernel"], size, extra["impl"], machine, commit,
                                        date, seconds, gbps, peak, PYTEST_BENCHMARK))
    return history


def load(results_dir: str | Path) -> History:
    """asv's and pytest-benchmark's points of ``results_dir`` (asv's win where both)."""
    results_dir = Path(results_dir)
    asv = read_asv(results_dir / "asv")
    pytest = read_pytest_benchmark(results_dir / "kernels")
    timed = {_key(p) for p in asv.points}
    points = asv.points + [p for p in pytest.points if _key(p) not in timed]
    history = History(sorted(points, key=lambda p: (p.date, p.commit, _key(p))),
                      asv.problems + pytest.problems)
    for problem in history.problems:
        log.warning("kernel history: %s", problem)
    return history


def _key(p: Point) -> tuple:
    return (p.kernel, p.size, p.impl, p.machine, p.commit)


def _series_key(p: Point) -> tuple[str, str, str, str]:
    return (p.kernel, p.size, p.impl, p.machine)


def changes(history: History, threshold: float = CHANGE_THRESHOLD) -> list[dict]:
    """Per kernel, size, implementation, machine and harness: the latest commit against
    the one before it (in commit order), with ``change`` = new GB/s / old − 1 and
    ``marked`` when it is beyond ``threshold`` either way. Each harness is compared with
    itself: asv's and pytest-benchmark's timings of one case differ by their method."""
    order = {c: i for i, c in enumerate(history.commits)}
    per_run: dict[tuple[str, str], set[str]] = {}
    for p in history.points:
        per_run.setdefault((p.machine, p.source), set()).add(p.commit)
    by_key = {(*_key(p), p.source): p for p in history.points}
    rows = []
    for (machine, source), commits in sorted(per_run.items()):
        if len(commits) < 2:
            continue
        before, after = sorted(commits, key=order.get)[-2:]
        for kernel, impls in cases.IMPLS.items():
            sizes = sorted({p.size for p in history.points
                            if p.kernel == kernel and p.machine == machine},
                           key=lambda s: tuple(int(n) for n in s.split("x")))
            for size, impl in itertools.product(sizes, impls):
                old = by_key.get((kernel, size, impl, machine, before, source))
                new = by_key.get((kernel, size, impl, machine, after, source))
                if old is None or new is None:
                    continue
                change = new.gbps / old.gbps - 1
                rows.append({
                    "kernel": kernel, "size": size, "impl": impl, "machine": machine,
                    "source": source, "before": before, "after": after,
                    "gbps_before": old.gbps, "gbps_after": new.gbps,
                    "peak_fraction": new.peak_fraction, "change": change,
                    "marked": abs(change) > threshold,
                })
    return rows


def short(commit: str) -> str:
    return commit[:8]


def figure(history: History, kernel: str, colours: Iterable[str]):
    """A matplotlib figure of ``kernel``'s GB/s over commits: a panel per size, a line
    per implementation and machine, the machine's peak dashed where it is known; None
    when the kernel has no points. The caller styles and serialises it (inline SVG)."""
    import matplotlib.pyplot as plt

    points = [p for p in history.points if p.kernel == kernel]
    if not points:
        return None
    commits = history.commits
    x_of = {c: i for i, c in enumerate(commits)}
    sizes = sorted({p.size for p in points}, key=lambda s: tuple(int(n) for n in s.split("x")))
    lines = sorted({(p.impl, p.machine) for p in points},
                   key=lambda k: (cases.IMPLS[kernel].index(k[0])
                                  if k[0] in cases.IMPLS[kernel] else 99, k[1]))
    palette = list(colours)
    colour = {line: palette[i % len(palette)] for i, line in enumerate(lines)}
    width = max(4.0, 0.35 * len(commits) + 1.5)
    fig, axes = plt.subplots(1, len(sizes), figsize=(width * len(sizes) + 1.8, 2.9),
                             squeeze=False, sharey=False)
    fig.subplots_adjust(left=0.9 / fig.get_figwidth(), right=1 - 1.9 / fig.get_figwidth(),
                        bottom=0.95 / 2.9, top=1 - 0.3 / 2.9, wspace=0.3)
    for ax, size in zip(axes[0], sizes, strict=True):
        for impl, machine in lines:
            series = sorted((x_of[p.commit], p.gbps) for p in points
                            if (p.size, p.impl, p.machine) == (size, impl, machine))
            if series:
                xs, ys = zip(*series, strict=True)
                ax.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.3,
                        color=colour[(impl, machine)], label=f"{impl} · {machine}")
        for peak in sorted({p.peak_gbps for p in points if p.size == size and p.peak_gbps}):
            ax.axhline(peak, color="#1f2328", linewidth=0.9, linestyle="--")
        ax.set_title(f"{kernel} {size}")
        ax.set_xticks(range(len(commits)), [short(c) for c in commits], rotation=60,
                      ha="right", fontsize=7.5)
        ax.set_xlim(-0.5, len(commits) - 0.5)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("achieved GB/s")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    axes[0][-1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                       borderaxespad=0.0, fontsize=8)
    return fig
