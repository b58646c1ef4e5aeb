"""The count gate's records over commits (``results/counts/<commit>.json``, written by
``make counts``), as series per commit, with the first commit at which each moved.

A record holds one commit's deterministic kernel figures: instruction counts of the CPU
paths, bytes per element and compile figures of the Triton kernels (``series``: name ->
kind, figure, case, arch, unit, value), the commit's subject and its place in the history
(``order``: how many commits it has; an ancestor has fewer), the environment it was
measured in, and the gate's threshold. Records are comparable only within one environment
(machine, CPU, torch, Triton, Python, valgrind, harness): the history is that of the
environment with the most records, and the others are counted as left out. Records of a
working tree with changes (``dirty``) are not points in history.

A series *moved* at a commit when its value differs from its value at the previous
commit that has it by more than the threshold, relative to that value (from zero: any
change); the first such commit is the series' *first bad commit*.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from suites.site_data.common import FileProblem, natural_key

ENVIRONMENT = ("machine", "cpu", "torch", "triton", "python", "valgrind", "harness")
#: The order in which kinds of figures are shown.
KINDS = ("instructions", "bytes", "compile")


@dataclass(frozen=True)
class Commit:
    commit: str
    subject: str
    order: int
    measured_commit: str | None  # the commit with the same kernels/ tree whose figures these are


@dataclass(frozen=True)
class Series:
    name: str  # "instructions/adamw[reference-1x1048576]", "sm_90 registers/scan_fwd 16x1024x512"
    kind: str
    figure: str  # "instructions", "bytes_per_element", "sm_90 registers"
    case: str
    unit: str
    values: tuple[float | None, ...]  # one per commit of the history, None where absent
    first_bad: int | None  # index of the commit at which it first moved


@dataclass
class CountHistory:
    commits: list[Commit] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    environment: dict = field(default_factory=dict)
    threshold: float | None = None
    left_out: int = 0  # records of other environments, or of a dirty working tree
    problems: list[FileProblem] = field(default_factory=list)

    def figures(self) -> list[str]:
        """The figures, instructions first, then bytes, then each compile figure."""
        kinds = {s.figure: KINDS.index(s.kind) if s.kind in KINDS else len(KINDS)
                 for s in self.series}
        return sorted(kinds, key=lambda f: (kinds[f], natural_key(f)))

    def moved(self) -> list[Series]:
        return [s for s in self.series if s.first_bad is not None]


def moved(before: float, after: float, threshold: float) -> bool:
    if before == 0:
        return after != 0
    return abs(after / before - 1) > threshold


def first_bad(values: tuple[float | None, ...], threshold: float) -> int | None:
    """The index of the first value that moved from the previous value present."""
    previous = None
    for index, value in enumerate(values):
        if value is None:
            continue
        if previous is not None and moved(previous, value, threshold):
            return index
        previous = value
    return None


def _read(counts_dir: Path) -> tuple[list[dict], list[FileProblem]]:
    records, problems = [], []
    for path in sorted(counts_dir.glob("*.json")) if counts_dir.is_dir() else []:
        relative = path.relative_to(counts_dir.parent).as_posix()
        if path.is_symlink() or not path.is_file():
            problems.append(FileProblem(relative, "not a regular file", copied=False))
            continue
        try:
            record = json.loads(path.read_text())
            if not isinstance(record.get("series"), dict) or "commit" not in record:
                raise ValueError("no commit or series")
            records.append(record)
        except (OSError, ValueError, AttributeError) as err:
            problems.append(FileProblem(relative, f"not a count record ({err})"))
    return records, problems


def load_counts(counts_dir: str | Path) -> CountHistory:
    """The count history of ``counts_dir`` (empty when there is none)."""
    records, problems = _read(Path(counts_dir))
    clean = [r for r in records if not r.get("dirty")]
    if not clean:
        return CountHistory(left_out=len(records), problems=problems)
    clean.sort(key=lambda r: (r.get("order", 0), r.get("commit_time", ""), r["commit"]))
    groups: dict[tuple, list[dict]] = {}
    for record in clean:
        groups.setdefault(tuple(record.get(k) for k in ENVIRONMENT), []).append(record)
    # The environment with the most records; of equals, the one with the newest.
    key = max(groups, key=lambda k: (len(groups[k]), clean.index(groups[k][-1])))
    chosen, environment = groups[key], dict(zip(ENVIRONMENT, key, strict=True))
    threshold = float(chosen[-1].get("threshold", 0.02))
    names: dict[str, dict] = {}
    for record in chosen:
        for name, meta in record["series"].items():
            names.setdefault(name, meta)
    series = []
    for name, meta in sorted(names.items(), key=lambda item: natural_key(item[0])):
        values = tuple(_value(r, name) for r in chosen)
        series.append(Series(name, str(meta.get("kind", "")), name.split("/", 1)[0],
                             str(meta.get("case", name.split("/", 1)[-1])),
                             str(meta.get("unit", "")), values, first_bad(values, threshold)))
    commits = [Commit(r["commit"], str(r.get("subject", "")), int(r.get("order", 0)),
                      r.get("measured_commit")) for r in chosen]
    return CountHistory(commits, series, environment, threshold,
                        len(records) - len(chosen), problems)


def _value(record: dict, name: str) -> float | None:
    meta = record["series"].get(name)
    return None if meta is None else float(meta["value"])


def moved_rows(history: CountHistory) -> list[dict]:
    """One row per series that moved: its figure, case, unit, first and last values, and
    the first bad commit with its subject and the values on either side of it
    (``after_gap``: the commit of the value before, when commits in between lack it)."""
    rows = []
    for s in history.moved():
        present = [v for v in s.values if v is not None]
        previous = max(i for i in range(s.first_bad) if s.values[i] is not None)
        bad = history.commits[s.first_bad]
        rows.append({"name": s.name, "figure": s.figure, "case": s.case, "unit": s.unit,
                     "first": present[0], "last": present[-1], "before": s.values[previous],
                     "after": s.values[s.first_bad], "commit": bad.commit,
                     "subject": bad.subject, "index": s.first_bad,
                     # Where the commits in between lack the series, the move happened
                     # somewhere after this one: the first bad commit is the first measured.
                     "after_gap": history.commits[previous].commit
                     if previous < s.first_bad - 1 else None})
    return rows
