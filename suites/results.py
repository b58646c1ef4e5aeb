"""The results store: one JSON file per run, the leaderboard's database.

Layout: ``<root>/runs/<task name, its slashes as directories>/<optimizer>/<run key>.json``
(task names start with their suite, so the first directory is the suite). The run key
hashes what makes a run: task, budget, optimizer name and source hash, configuration
and seed; a sweep skips runs whose file exists, which makes it resumable, and merging
results from several machines is copying files.

Files are written to a temporary file in the same directory and renamed into place, so
a reader never sees half a file. Non-finite floats are stored as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"`` (JSON has no such numbers) and read back as floats.
A file that is corrupt or has an unknown schema version is logged and skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from suites.api import Metric, RunResult, RunSpec
from suites.atomic import atomic_open

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
#: Environment variable naming the results directory (the CLI's ``--results`` wins).
RESULTS_ENV = "LSB_RESULTS"
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_SAFE_PART = re.compile(r"[^A-Za-z0-9_.-]")


def default_root() -> Path:
    """``$LSB_RESULTS`` if set, else ``results/`` in the current directory."""
    return Path(os.environ.get(RESULTS_ENV) or "results")


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, non-finite floats as strings: equal values, equal text."""
    return json.dumps(encode_floats(value), sort_keys=True, separators=(",", ":"),
                      allow_nan=False)


def config_key(hparams: dict[str, Any]) -> str:
    """A configuration's canonical text (``canonical_json`` of its hparams dict): the key
    that groups runs by configuration, and the ``config_key`` column of the tables."""
    return canonical_json(hparams)


def run_key(spec: RunSpec) -> str:
    """The identity of a run: 16 hex digits of sha256 over what determines its outcome."""
    identity = {
        "task": spec.task,
        "budget": spec.budget,
        "optimizer": spec.optimizer,
        "source_hash": spec.source_hash,
        "hparams": spec.hparams,
        "seed": spec.seed,
    }
    if spec.packages:  # only then: the keys of runs without such packages stay as they were
        identity["packages"] = spec.packages
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:16]


def encode_floats(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its string form."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: encode_floats(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_floats(v) for v in value]
    return value


def decode_floats(value: Any) -> Any:
    """The inverse of ``encode_floats``."""
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if isinstance(value, dict):
        return {k: decode_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_floats(v) for v in value]
    return value


def to_record(result: RunResult) -> dict[str, Any]:
    """The JSON document of a run (see ``SCHEMA_VERSION``)."""
    spec = result.spec
    return {
        "schema_version": SCHEMA_VERSION,
        "run_key": run_key(spec),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": spec.task,
        "suite": result.suite or spec.task.split("/", 1)[0],
        "metric": asdict(result.metric) if result.metric is not None else None,
        "budget": spec.budget,
        "phase": spec.phase,
        "optimizer": {
            "name": spec.optimizer,
            "source_hash": spec.source_hash,
            "path": spec.optimizer_path,
            "packages": spec.packages,
        },
        "hparams": spec.hparams,
        "seed": spec.seed,
        "status": result.status,
        "score": result.score,
        "metrics": result.metrics,
        "steps_run": result.steps_run,
        "steps_to_target": result.steps_to_target,
        "timing": {"wall_time_s": result.wall_time, "time_per_step_s": result.time_per_step,
                   "warmup_s": result.warmup_time},
        "state_bytes": result.state_bytes,
        "param_bytes": result.param_bytes,
        "curve": result.curve,
        "error": result.error,
        "env": result.env,
    }


def from_record(record: dict[str, Any]) -> RunResult:
    """The ``RunResult`` a record was made from (its ``env`` and ``curve`` included)."""
    optimizer = record["optimizer"]
    spec = RunSpec(
        task=record["task"],
        budget=record["budget"],
        optimizer=optimizer["name"],
        optimizer_path=optimizer["path"],
        source_hash=optimizer["source_hash"],
        hparams=record["hparams"],
        seed=record["seed"],
        phase=record["phase"],
        packages=dict(optimizer.get("packages") or {}),
    )
    return RunResult(
        spec=spec,
        status=record["status"],
        metrics=record["metrics"],
        score=float(record["score"]),
        steps_run=record["steps_run"],
        curve=record["curve"],
        time_per_step=float(record["timing"]["time_per_step_s"]),
        wall_time=float(record["timing"]["wall_time_s"]),
        warmup_time=float(record["timing"].get("warmup_s", math.nan)),
        state_bytes=record["state_bytes"],
        steps_to_target=record["steps_to_target"],
        error=record["error"],
        env=record["env"],
        suite=record["suite"],
        metric=Metric.from_record(record["metric"]),
        param_bytes=record["param_bytes"],
    )


class CorruptRecord(ValueError):
    """A results file that cannot be read as a run of this schema."""


def read_record(path: Path) -> dict[str, Any]:
    """A results file's record; raises ``CorruptRecord`` for unreadable or unknown files."""
    try:
        record = decode_floats(json.loads(path.read_text()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorruptRecord(f"{path}: not readable as JSON ({err})") from err
    if not isinstance(record, dict):
        raise CorruptRecord(f"{path}: not a JSON object")
    version = record.get("schema_version")
    if version != SCHEMA_VERSION:
        raise CorruptRecord(
            f"{path}: schema_version {version!r}, this version of lsb reads {SCHEMA_VERSION}"
        )
    try:
        from_record(record)
    except (KeyError, TypeError, ValueError) as err:
        raise CorruptRecord(f"{path}: not a complete run record ({type(err).__name__}: {err})") \
            from err
    return record


class ResultStore:
    """The run files under ``root/runs``."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_root()
        self.runs_dir = self.root / "runs"

    def path_for(self, spec: RunSpec) -> Path:
        task_parts = [
            _SAFE_PART.sub("_", part) for part in spec.task.split("/")
            if part not in ("", ".", "..")
        ]
        optimizer = _SAFE_PART.sub("_", spec.optimizer)
        return self.runs_dir.joinpath(*task_parts, optimizer, f"{run_key(spec)}.json")

    def load(self, spec: RunSpec) -> RunResult | None:
        """The stored result of ``spec``; ``None`` if absent or unreadable (logged)."""
        path = self.path_for(spec)
        if not path.exists():
            return None
        try:
            return from_record(read_record(path))
        except CorruptRecord as err:
            log.warning("skipping results file %s: %s; the run will be made again", path, err)
            return None

    def save(self, result: RunResult) -> Path:
        """Write a run's file atomically (temporary file in the same directory, then rename)."""
        path = self.path_for(result.spec)
        text = json.dumps(encode_floats(to_record(result)), indent=1, allow_nan=False)
        with atomic_open(path) as file:
            file.write(text)
        return path

    def records(self) -> Iterator[dict[str, Any]]:
        """Every readable run record; unreadable files are logged and skipped."""
        if not self.runs_dir.is_dir():
            return
        for path in sorted(self.runs_dir.rglob("*.json")):
            try:
                yield read_record(path)
            except CorruptRecord as err:
                log.warning("skipping results file: %s", err)
