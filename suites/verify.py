"""``lsb verify``: re-run recorded runs from their spec and compare every recorded value.

Results arrive by pull request, so a run file is a claim until it is re-run. A run is made
again from its recorded spec — the kept submission file of its source hash, the same task,
budget, configuration and seed, through the same executor as any run — and every value
that the run determines is compared with the file: status, score, metrics, the initial
metrics, steps, gradient evaluations, evaluations to target, optimizer-state and
parameter bytes, and every curve point. Runs on a CPU with the same seed, torch and code
are deterministic (one thread each), so the comparison is exact by default; ``tolerance``
(relative) allows for a platform whose kernels are not. What depends on the machine's
load (times, memory readings, when the run was made) is not compared. A verified file is
recorded under ``verified/`` with its digest (``ResultStore.mark_verified``); editing the
file afterwards voids it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suites.record import RunResult, RunSpec
from suites.results import CorruptRecord, ResultStore, StoredRun, read_run, walk_files

#: Fields that the run determines: compared between the file and the re-run.
COMPARED = ("status", "score", "metrics", "initial_metrics", "steps_run", "grad_evals",
            "evals_to_target", "state_bytes", "param_bytes", "curve")


@dataclass
class Verdict:
    """One verified run file: the differences found (field, recorded, re-run), and why it
    could not be re-run at all."""

    path: Path
    differences: list[tuple[str, Any, Any]] = field(default_factory=list)
    problem: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None and not self.differences


def _equal(recorded: Any, again: Any, tolerance: float) -> bool:
    if isinstance(recorded, float) and isinstance(again, float):
        if math.isnan(recorded) or math.isnan(again):
            return math.isnan(recorded) and math.isnan(again)
        if recorded == again:
            return True
        return tolerance > 0 and math.isclose(recorded, again, rel_tol=tolerance)
    return recorded == again


def differences(recorded: RunResult, again: RunResult, tolerance: float = 0.0
                ) -> list[tuple[str, Any, Any]]:
    """Every compared value that differs, as (where, recorded, re-run); curves point by
    point (the first differing point of each curve)."""
    found = []
    for name in COMPARED:
        mine, theirs = getattr(recorded, name), getattr(again, name)
        if isinstance(mine, dict):
            for key in sorted(set(mine) | set(theirs)):
                a, b = mine.get(key), theirs.get(key)
                if isinstance(a, list) and isinstance(b, list):
                    if len(a) != len(b):
                        found.append((f"{name}.{key} (points)", len(a), len(b)))
                        continue
                    index = next((i for i, (x, y) in enumerate(zip(a, b, strict=True))
                                  if not _equal(_float(x), _float(y), tolerance)), None)
                    if index is not None:
                        found.append((f"{name}.{key}[{index}]", a[index], b[index]))
                elif not _equal(_float(a), _float(b), tolerance):
                    found.append((f"{name}.{key}", a, b))
        elif not _equal(_float(mine), _float(theirs), tolerance):
            found.append((name, mine, theirs))
    return found


def _float(value: Any) -> Any:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def run_files(store: ResultStore, paths: Sequence[str | Path] = ()) -> list[Path]:
    """The run files named by ``paths`` (files, or directories searched recursively), or
    every run file of the store; in path order."""
    if not paths:
        return [p for p, problem in walk_files(store.runs_dir) if problem is None]
    found: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            found += [p for p, problem in walk_files(entry) if problem is None]
        else:
            found.append(entry)
    return sorted(set(found))


def sample(files: Sequence[Path], count: int | None, seed: int = 0) -> list[Path]:
    """``count`` of ``files`` drawn without replacement from ``seed`` (all when ``None``)."""
    if count is None or count >= len(files):
        return list(files)
    return sorted(random.Random(seed).sample(list(files), count))


def runtime_spec(stored: StoredRun, store: ResultStore) -> RunSpec:
    """The recorded spec, loading its submission from the file the store kept for it."""
    spec = stored.result.spec
    kept = store.source_path(spec.optimizer.name, spec.optimizer.source_hash)
    optimizer = spec.optimizer.model_copy(update={"runtime_path": str(kept)})
    return spec.model_copy(update={"optimizer": optimizer})


def environment_notes(recorded: dict[str, Any], here: dict[str, Any]) -> list[str]:
    """Where the re-run's platform differs from the recorded one (a difference in values is
    then no proof of a forged file)."""
    return [f"recorded with {key} {recorded.get(key)}, re-run with {here.get(key)}"
            for key in ("git_commit", "torch", "numpy", "device")
            if recorded.get(key) != here.get(key)]


def verify(store: ResultStore, files: Iterable[Path], executor: Any, *,
           tolerance: float = 0.0, record: bool = True) -> list[Verdict]:
    """Re-run each file's run through ``executor`` (``suites.executors``) and compare; a
    file that matches is recorded as verified (``record``)."""
    verdicts: dict[str, Verdict] = {}
    wanted: dict[str, tuple[StoredRun, RunSpec]] = {}
    for path in files:
        try:
            stored = read_run(path)
        except CorruptRecord as err:
            verdicts[str(path)] = Verdict(path, problem=str(err))
            continue
        kept = store.source_path(stored.result.spec.optimizer.name,
                                 stored.result.spec.optimizer.source_hash)
        if not kept.is_file():
            verdicts[str(path)] = Verdict(path, problem=f"the submission file it was made with "
                                                        f"is not kept ({kept} is missing)")
            continue
        if stored.modified:
            verdicts.setdefault(str(path), Verdict(path)).notes.append(
                "the file was edited after the driver wrote it (its digest does not match)")
        wanted[stored.result.key] = (stored, runtime_spec(stored, store))
    for again in executor.map([spec for _, spec in wanted.values()]):
        stored, _ = wanted[again.key]
        verdict = verdicts.setdefault(str(stored.path), Verdict(stored.path))
        verdict.notes += environment_notes(stored.result.env, again.env)
        verdict.differences = differences(stored.result, again, tolerance)
        if again.invalid:
            verdict.differences.append(("invalid", stored.result.invalid, again.invalid))
        if verdict.ok and record:
            store.mark_verified(stored, {"commit": again.env.get("git_commit"),
                                         "torch": again.env.get("torch"),
                                         "machine": again.env.get("machine"),
                                         "tolerance": tolerance})
    return [verdicts[key] for key in sorted(verdicts)]
