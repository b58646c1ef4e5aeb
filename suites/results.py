"""The results store: one JSON file per run, the leaderboard's database.

Layout: ``<root>/runs/<task name, its slashes as directories>/<optimizer>/<run key>.json``
(task names start with their suite, so the first directory is the suite). The run key
hashes what makes a run: task, budget, optimizer name and source hash, configuration
and seed; a sweep skips runs whose file exists, which makes it resumable, and merging
results from several machines is copying files.

Files are written to a temporary file in the same directory and renamed into place, so
a reader never sees half a file. Non-finite floats are stored as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"`` (JSON has no such numbers) and read back as floats;
a bare ``NaN`` literal (which Python's json would accept) makes a file invalid.

Reading is defensive, since results arrive by pull request: every file is checked
against ``RunRecord`` (a pydantic model of schema version 1), symbolic links are never
followed and files over ``MAX_FILE_BYTES`` are not read. A file that fails is logged and
skipped, naming the file and the field. Concurrent sweeps into one directory make each
run once: ``ResultStore.claim`` locks a run key (``filelock``) while its run is made.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import math
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

import filelock
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from suites.api import BUDGET_NAMES, Metric, RunResult, RunSpec
from suites.atomic import atomic_open

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
#: Environment variable naming the results directory (the CLI's ``--results`` wins).
RESULTS_ENV = "LSB_RESULTS"
#: A results file larger than this is not read (the site lists it instead of copying it).
MAX_FILE_BYTES = 10 * 2**20
#: ``remove_stale_temporaries``'s default: a temporary file this old (seconds) was left by
#: a killed write (a write takes milliseconds).
STALE_TEMPORARY_AGE = 600.0
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_SAFE_PART = re.compile(r"[^A-Za-z0-9_.-]")
#: The store's rule for names it records (optimizers, tasks, suites, metrics): printable
#: text without control characters; submissions are held to a stricter rule
#: (``suites.submission.NAME_PATTERN``), the store only to what it can file and show.
_NAME = re.compile(r"^[^\x00-\x1f\x7f]+$")
#: What ``atomic_open`` names its temporary files: ``.<file name>.<random>.tmp``.
_TEMPORARY = re.compile(r"\..+\.tmp")


class StoreError(Exception):
    """A results directory, or a place in it, that cannot be used; the message names the
    path and the fix."""


class RunBusy(StoreError):
    """Another process holds the run's lock (``ResultStore.claim`` with a timeout)."""


class CorruptRecord(ValueError):
    """A results file that cannot be read as a run of this schema."""


def default_root() -> Path:
    """``$LSB_RESULTS`` if set, else ``results/`` in the current directory."""
    return Path(os.environ.get(RESULTS_ENV) or "results")


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, non-finite floats as strings: equal values, equal text."""
    return json.dumps(encode_floats(value), sort_keys=True, separators=(",", ":"),
                      allow_nan=False)


def file_hash(data: bytes) -> str:
    """A submission's identity: sha256 of the file's bytes, first 12 hex digits."""
    return hashlib.sha256(data).hexdigest()[:12]


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


# --------------------------------------------------------------------------- schema


def _number(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _NON_FINITE:
        return value
    raise ValueError(f"must be a number or one of 'NaN', 'Infinity', '-Infinity', "
                     f"not {type(value).__name__}")


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    raise ValueError(f"must be a number, string, boolean or null, not {type(value).__name__}")


def _hparam(value: Any) -> Any:
    if isinstance(value, list):
        return [_scalar(v) for v in value]
    try:
        return _scalar(value)
    except ValueError:
        raise ValueError(f"must be a number, string, boolean, null or a list of them, not "
                         f"{type(value).__name__}") from None


def _optional_number(value: Any) -> Any:
    return None if value is None else _number(value)


def _iso_time(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError as err:
        raise ValueError("must be an ISO 8601 time such as 2026-01-01T12:00:00+00:00") from err
    return value


# Plain validators rather than unions: an error then names the field, not a union member.
Number = Annotated[Any, PlainValidator(_number)]
OptionalNumber = Annotated[Any, PlainValidator(_optional_number)]
Hyperparameter = Annotated[Any, PlainValidator(_hparam)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=200, pattern=_NAME.pattern)]


class _Record(BaseModel):
    # Unknown fields are allowed (a later version may add one); known ones are typed.
    model_config = ConfigDict(extra="allow", frozen=True)


class MetricRecord(_Record):
    name: Name
    higher_is_better: StrictBool
    target: OptionalNumber = None
    tolerance: Number = 0.1
    unit: StrictStr = ""
    select_by: StrictStr | None = None


class OptimizerRecord(_Record):
    name: Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=_NAME.pattern)]
    source_hash: StrictStr
    path: Annotated[StrictStr, Field(pattern=r"^[^\x00-\x1f\x7f]*$")] | None
    lr_key: StrictStr | None = None


class TimingRecord(_Record):
    wall_time_s: Number
    time_per_step_s: Number


class RunRecord(_Record):
    """A run file of schema version 1 (``to_record``), as JSON text has it: non-finite
    numbers as strings."""

    schema_version: Literal[1]
    run_key: StrictStr
    created: Annotated[StrictStr, AfterValidator(_iso_time)]
    task: Name
    suite: Name
    metric: MetricRecord | None
    budget: Literal[BUDGET_NAMES]  # type: ignore[valid-type]
    phase: Literal["tune", "eval", "sensitivity"]
    optimizer: OptimizerRecord
    hparams: dict[StrictStr, Hyperparameter]
    seed: StrictInt
    status: Literal["ok", "diverged", "timeout", "error"]
    score: Number
    metrics: dict[StrictStr, OptionalNumber]
    steps_run: Annotated[StrictInt, Field(ge=0)]
    steps_to_target: Annotated[StrictInt, Field(ge=0)] | None
    timing: TimingRecord
    state_bytes: Annotated[StrictInt, Field(ge=0)]
    param_bytes: Annotated[StrictInt, Field(ge=0)]
    curve: dict[StrictStr, list[OptionalNumber]]
    error: StrictStr | None
    env: dict[StrictStr, Any]


def _first_problem(err: ValidationError) -> str:
    """The first failing field of a validation error, as ``field.path: what is wrong``."""
    problem = err.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in problem["loc"]) or "(the record)"
    message = re.sub(r" or instance of \w+", "", problem["msg"].removeprefix("Value error, "))
    more = err.error_count() - 1
    return f"field {where}: {message}" + (f" (and {more} more)" if more else "")


def _reject_constant(constant: str) -> Any:
    raise ValueError(f"bare {constant} is not JSON (write the string \"{constant}\")")


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
            "lr_key": spec.lr_key,
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
        lr_key=optimizer.get("lr_key"),
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


def parse_record(text: str | bytes) -> dict[str, Any]:
    """A run file's text as its record (non-finite numbers decoded); raises
    ``CorruptRecord`` naming the first invalid field (no path: callers add it)."""
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as err:  # JSONDecodeError is a ValueError
        raise CorruptRecord(f"not readable as JSON ({err})") from err
    if not isinstance(document, dict):
        raise CorruptRecord("not a JSON object")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise CorruptRecord(
            f"schema_version {version!r}, this version of lsb reads {SCHEMA_VERSION}")
    try:
        RunRecord.model_validate(document)
    except ValidationError as err:
        raise CorruptRecord(f"not a valid run record: {_first_problem(err)}") from err
    return decode_floats(document)


#: Records already parsed in this process, by the BLAKE2b digest of their file's bytes:
#: a command that reads the store more than once (``lsb demo``: the estimate, the sweep,
#: the site) validates and decodes each file once. Only valid records are kept; callers
#: treat records as read-only.
_PARSED: dict[bytes, dict[str, Any]] = {}
_PARSED_MAX = 200_000


def parse_record_cached(data: bytes) -> dict[str, Any]:
    """:func:`parse_record` of ``data``, from the cache when the same bytes were parsed
    before in this process."""
    digest = hashlib.blake2b(data, digest_size=16).digest()
    record = _PARSED.get(digest)
    if record is None:
        record = parse_record(data)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[digest] = record
    return record


def read_record(path: Path) -> dict[str, Any]:
    """A results file's record; raises ``CorruptRecord`` (its message starts with the
    path) for a file that is not a regular file under ``MAX_FILE_BYTES`` or not a valid
    run record."""
    try:
        problem = file_problem(path)
        if problem is not None:
            raise CorruptRecord(problem)
        return parse_record(path.read_bytes())
    except OSError as err:
        raise CorruptRecord(f"{path}: not readable ({err.strerror})") from err
    except CorruptRecord as err:
        raise CorruptRecord(f"{path}: {err}") from err


# --------------------------------------------------------------------------- files


def file_problem(path: Path) -> str | None:
    """Why ``path`` is not read as a results file (a symbolic link, not a regular file,
    over ``MAX_FILE_BYTES``), or ``None``. Never follows a link."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return "a symbolic link: skipped (results are read from regular files only)"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file: skipped"
    if info.st_size > MAX_FILE_BYTES:
        return f"{info.st_size} bytes, over the {MAX_FILE_BYTES} bytes a results file may have"
    return None


def walk_files(directory: Path, suffix: str = ".json", *, recursive: bool = True
               ) -> Iterator[tuple[Path, str | None]]:
    """Each entry under ``directory`` named ``*<suffix>``, with ``file_problem``'s reason
    to skip it (``None``: a regular file to read), sorted. Symbolic links, to files or
    directories, are reported and never followed, ``directory`` included."""
    if directory.is_symlink():
        yield directory, file_problem(directory)
        return
    if not directory.is_dir():
        return
    for here, dirs, files in os.walk(directory, followlinks=False):
        base = Path(here)
        linked = [d for d in dirs if (base / d).is_symlink()]
        dirs[:] = sorted(d for d in dirs if d not in linked) if recursive else []
        for name in sorted(files + linked):
            path = base / name
            if name.endswith(suffix) or path.is_symlink():
                try:
                    yield path, file_problem(path)
                except OSError as err:
                    yield path, f"not readable ({err.strerror})"


# --------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class Skipped:
    """A file under ``runs/`` that is not a valid run, and why (no path in ``reason``)."""

    path: Path
    reason: str
    #: Not read at all: a symbolic link, not a regular file, too large (``file_problem``).
    unread: bool = False


class ResultStore:
    """The run files under ``root/runs``."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_root()
        self.runs_dir = self.root / "runs"
        self.sources_dir = self.root / "optimizers"

    def source_path(self, name: str, source_hash: str) -> Path:
        """Where the store keeps the submission file whose runs it holds:
        ``optimizers/<name>/<source hash>.py``, so the site shows and links the very
        file wherever the results are copied and the site is built."""
        safe_hash = _SAFE_PART.sub("_", source_hash)
        return self.sources_dir / _SAFE_PART.sub("_", name) / f"{safe_hash}.py"

    def save_source(self, path: str | Path, name: str, source_hash: str) -> Path | None:
        """Copy a submission file into the store (once per hash); ``None`` when the file's
        bytes no longer have ``source_hash``."""
        data = Path(path).read_bytes()
        if file_hash(data) != source_hash:
            return None
        target = self.source_path(name, source_hash)
        if not target.is_file():
            with atomic_open(target) as file:
                file.write(data.decode("utf-8"))
        return target

    def path_for(self, spec: RunSpec) -> Path:
        task_parts = [
            _SAFE_PART.sub("_", part) for part in spec.task.split("/")
            if part not in ("", ".", "..")
        ]
        optimizer = _SAFE_PART.sub("_", spec.optimizer)
        return self.runs_dir.joinpath(*task_parts, optimizer, f"{run_key(spec)}.json")

    def _run_file(self, spec: RunSpec) -> Path:
        """``path_for(spec)``; ``StoreError`` when something other than a file is there."""
        path = self.path_for(spec)
        if path.is_symlink() or (path.exists() and not path.is_file()):
            kind = "a symbolic link" if path.is_symlink() else "a directory" \
                if path.is_dir() else "not a regular file"
            raise StoreError(f"{path} is {kind} where a run file belongs; remove it")
        return path

    def load(self, spec: RunSpec) -> RunResult | None:
        """The stored result of ``spec``; ``None`` if absent or unreadable (logged).

        Raises ``StoreError`` when a directory (or a link) sits where its file belongs.
        """
        path = self._run_file(spec)
        if not path.exists():
            return None
        try:
            return from_record(read_record(path))
        except CorruptRecord as err:
            log.warning("skipping results file %s; the run will be made again", err)
            return None

    def save(self, result: RunResult) -> Path:
        """Write a run's file atomically (temporary file in the same directory, then rename).

        Raises ``StoreError`` when a directory (or a link) sits where the file belongs.
        """
        path = self._run_file(result.spec)
        text = json.dumps(encode_floats(to_record(result)), indent=1, allow_nan=False)
        with atomic_open(path) as file:
            file.write(text)
        return path

    def scan(self) -> tuple[list[tuple[Path, dict[str, Any]]], list[Skipped]]:
        """Every valid run record under ``runs/`` with its path, and every skipped file
        (invalid, a symbolic link, too large) with the reason, both in path order."""
        records, skipped = [], []
        for path, problem in walk_files(self.runs_dir):
            if problem is not None:
                skipped.append(Skipped(path, problem, unread=True))
                continue
            try:
                records.append((path, parse_record_cached(path.read_bytes())))
            except OSError as err:
                skipped.append(Skipped(path, f"not readable ({err.strerror})", unread=True))
            except CorruptRecord as err:
                skipped.append(Skipped(path, str(err)))
        return records, skipped

    def records(self) -> Iterator[dict[str, Any]]:
        """Every valid run record; the other files are logged (path and reason) and skipped."""
        records, skipped = self.scan()
        for problem in skipped:
            log.warning("skipping results file %s: %s", problem.path, problem.reason)
        for _, record in records:
            yield record

    # ----------------------------------------------------------------------- sweeps

    def check_writable(self) -> None:
        """Raise ``StoreError`` unless run files can be written under ``root``: it must be
        a directory (or creatable as one) in which a file can be created and removed.
        Run it before a sweep starts, so a bad ``--results`` fails before any run."""
        root = self.root
        if root.exists() and not root.is_dir():
            raise StoreError(f"results directory {root} is a file: pass --results DIR naming "
                             "a directory (it is created if missing)")
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            handle, probe = tempfile.mkstemp(dir=self.runs_dir, prefix=".lsb-probe.",
                                             suffix=".tmp")
            os.close(handle)
            os.unlink(probe)
        except OSError as err:
            reason = err.strerror or str(err)
            if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                fix = "pass --results DIR naming a directory you can write to"
            else:
                fix = "pass --results DIR naming a directory that can be created"
            raise StoreError(f"cannot write run files under {root}: {reason}; {fix}") from err
        if self.runs_dir.is_symlink() or not self.runs_dir.is_dir():
            raise StoreError(f"{self.runs_dir} is not a directory: remove it")

    @contextlib.contextmanager
    def claim(self, spec: RunSpec, timeout: float | None = None
              ) -> Iterator[RunResult | None]:
        """Hold the lock of ``spec``'s run key while its run is made, so that concurrent
        sweeps into one directory make each run once.

        Yields the stored result when the run file already exists (another sweep saved
        it, perhaps while this one waited for the lock): use it instead of running. Yields
        ``None`` when the run is this caller's to make: run it and ``save`` it inside the
        ``with`` block. The lock is ``<run file>.lock`` (``filelock.FileLock``, an
        ``flock`` that the kernel drops when its process dies, so a killed sweep leaves no
        lock held); it is removed on release while still held, which filelock's waiters
        detect and retry on. One claim holds one open file descriptor.

        ``timeout``: seconds to wait for another process's claim; ``None`` waits as long
        as it takes, ``0`` not at all. Raises ``RunBusy`` when it expires, and
        ``StoreError`` when a directory sits where the run file belongs.
        """
        path = self._run_file(spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = path.with_name(path.name + ".lock")
        lock = filelock.FileLock(lock_path, timeout=-1 if timeout is None else timeout,
                                 is_singleton=False)
        try:
            lock.acquire()
        except filelock.Timeout as err:
            raise RunBusy(f"{path}: another process is making this run") from err
        try:
            yield self.load(spec)
        finally:
            with contextlib.suppress(FileNotFoundError):
                lock_path.unlink()  # while held: a waiter then finds the inode unlinked
            lock.release()

    def remove_stale_temporaries(self, older_than: float = STALE_TEMPORARY_AGE) -> list[Path]:
        """Remove the temporary files of writes that were killed (``atomic_open``'s
        ``.<name>.<random>.tmp``) last modified more than ``older_than`` seconds ago;
        returns their paths. Younger ones may belong to a sweep writing now. (A killed
        claim's ``.lock`` file is harmless: its lock died with its process.)"""
        removed: list[Path] = []
        cutoff = time.time() - older_than
        for path, problem in walk_files(self.runs_dir, ".tmp"):
            try:
                if problem is None and _TEMPORARY.fullmatch(path.name) \
                        and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed.append(path)
            except FileNotFoundError:
                continue  # renamed into place or removed by its writer meanwhile
        return removed
