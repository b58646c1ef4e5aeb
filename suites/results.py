"""The results store: one JSON file per run, the leaderboard's database.

Layout: ``<root>/runs/<task name, its slashes as directories>/<optimizer>/<run key>.json``
(task names start with their suite, so the first directory is the suite). The run key
hashes what makes a run (``suites.record.run_key``); a sweep skips runs whose file exists,
which makes it resumable, and merging results from several machines is copying files.

A file is a ``suites.record.RunResult`` document of schema version 2: the fields, the
schema version, the run key and the digest of the rest (``record.document_digest``), so a
file edited after the driver wrote it reads as ``modified``. Files are written to a
temporary file in the same directory and renamed into place, so a reader never sees half
a file.

Reading is defensive, since results arrive by pull request: every file is validated
against the schema, symbolic links are never followed and files over ``MAX_FILE_BYTES``
are not read. A file that fails is logged and skipped, naming the file and the field.
Concurrent sweeps into one directory make each run once: ``ResultStore.claim`` locks a run
key (``filelock``) while its run is made. ``lsb verify`` records what it re-ran and found
identical under ``verified/`` (``ResultStore.mark_verified``), keyed by the file's digest.

The runs table is kept in ``<root>/summary.jsonl`` (``ResultStore.table``), so a read of
the store validates only the files that are new or changed since the last one: a row per
run file, keyed by the file's path and the BLAKE2b digest of its bytes, reused only while
the file still has those bytes. It is a cache of this machine's reads, never a source: it
is not committed (``.gitignore``), a stale, corrupt or unreadable one is ignored and
rebuilt, and a results directory that cannot be written is read without it.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import filelock
import pandas as pd
from pydantic import ValidationError

from suites import record
from suites.atomic import atomic_open
from suites.record import (
    COLUMNS,
    SCHEMA_VERSION,
    RunResult,
    RunSpec,
    canonical_json,
    config_key,
    document_digest,
    run_key,
    table_row,
)
from suites.store_files import MAX_FILE_BYTES as MAX_FILE_BYTES
from suites.store_files import file_problem, scan_file_stats, walk_files

log = logging.getLogger(__name__)

__all__ = ["SCHEMA_VERSION", "ResultStore", "StoreError", "RunBusy", "CorruptRecord",
           "StoredRun", "canonical_json", "config_key", "run_key", "file_hash", "read_run",
           "parse_document", "runs_table", "walk_files", "default_root", "RUN_TABLE_COLUMNS"]

#: Environment variable naming the results directory (the CLI's ``--results`` wins).
RESULTS_ENV = "LSB_RESULTS"
#: ``remove_stale_temporaries``'s default: a temporary file this old (seconds) was left by
#: a killed write (a write takes milliseconds).
STALE_TEMPORARY_AGE = 600.0
_SAFE_PART = re.compile(r"[^A-Za-z0-9_.-]")
#: What ``atomic_open`` names its temporary files: ``.<file name>.<random>.tmp``.
_TEMPORARY = re.compile(r"\..+\.tmp")
#: The runs table: the schema's columns, then what the store knows of each file.
RUN_TABLE_COLUMNS = [*COLUMNS, "file", "modified", "verified"]
#: The runs table's cache, beside ``runs/`` (``ResultStore.table``).
SUMMARY_FILE = "summary.jsonl"
#: Raised when a summary's rows change meaning; the code that makes the rows
#: (``suites.record``) is part of the summary's identity as well (``_summary_header``).
SUMMARY_VERSION = 2


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


def file_hash(data: bytes) -> str:
    """A submission's identity: sha256 of the file's bytes, first 12 hex digits."""
    return hashlib.sha256(data).hexdigest()[:12]


# --------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class StoredRun:
    """A run read from its file: the result, the digest the file carries, and whether that
    digest still matches the file's content (``modified``: it was edited since the driver
    wrote it)."""

    path: Path
    result: RunResult
    digest: str = ""
    modified: bool = False


def _first_problem(err: ValidationError) -> str:
    """The first failing field of a validation error, as ``field.path: what is wrong``."""
    problem = err.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in problem["loc"]) or "(the record)"
    message = re.sub(r" or instance of \w+", "", problem["msg"].removeprefix("Value error, "))
    more = err.error_count() - 1
    return f"field {where}: {message}" + (f" (and {more} more)" if more else "")


def _reject_constant(constant: str) -> Any:
    raise ValueError(f"bare {constant} is not JSON (write the string \"{constant}\")")


def parse_document(text: str | bytes) -> tuple[RunResult, str, bool]:
    """A run file's text as its result, the digest it carries, and whether that digest no
    longer matches (the file was edited); raises ``CorruptRecord`` naming the first invalid
    field (no path: callers add it)."""
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as err:  # JSONDecodeError is a ValueError
        raise CorruptRecord(f"not readable as JSON ({err})") from err
    if not isinstance(document, dict):
        raise CorruptRecord("not a JSON object")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise CorruptRecord(
            f"schema_version {version!r}, this version of lsb reads {SCHEMA_VERSION}"
            + (": remake its runs with `lsb run` (run files of schema 1 do not record "
               "gradient evaluations)" if version == 1 else ""))
    body = {k: v for k, v in document.items() if k not in ("schema_version", "run_key", "digest")}
    try:
        result = RunResult.model_validate(body)
    except ValidationError as err:
        raise CorruptRecord(f"not a valid run record: {_first_problem(err)}") from err
    if document.get("run_key") != result.key:
        raise CorruptRecord(f"field run_key: {document.get('run_key')!r} is not the key of "
                            f"the run it describes ({result.key})")
    digest = str(document.get("digest") or "")
    return result, digest, digest != document_digest(document)


#: Runs already parsed in this process, by the BLAKE2b digest of their file's bytes: a
#: command that reads the store more than once (``lsb demo``: the estimate, the sweep, the
#: site) validates each file once. Only valid runs are kept (results are frozen models).
_PARSED: dict[bytes, tuple[RunResult, str, bool]] = {}
_PARSED_MAX = 200_000


def bytes_digest(data: bytes) -> bytes:
    """A run file's identity in the caches: BLAKE2b (16 bytes) of its bytes."""
    return hashlib.blake2b(data, digest_size=16).digest()


def parse_document_cached(data: bytes, digest: bytes | None = None
                          ) -> tuple[RunResult, str, bool]:
    """:func:`parse_document` of ``data``, from the cache when the same bytes were parsed
    before in this process (``digest``: their ``bytes_digest``, when the caller has it)."""
    digest = bytes_digest(data) if digest is None else digest
    parsed = _PARSED.get(digest)
    if parsed is None:
        parsed = parse_document(data)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[digest] = parsed
    return parsed


def read_run(path: Path) -> StoredRun:
    """A results file's run; raises ``CorruptRecord`` (its message starts with the path) for
    a file that is not a regular file under ``MAX_FILE_BYTES`` or not a valid run."""
    try:
        problem = file_problem(path)
        if problem is not None:
            raise CorruptRecord(problem)
        parsed = parse_document_cached(path.read_bytes())
    except OSError as err:
        raise CorruptRecord(f"{path}: not readable ({err.strerror})") from err
    except CorruptRecord as err:
        raise CorruptRecord(f"{path}: {err}") from err
    return StoredRun(path, *parsed)


def runs_table(runs: Iterable[StoredRun], root: Path | None = None,
               verified: dict[str, str] | None = None) -> pd.DataFrame:
    """The runs table: one row per run, the schema's columns (``suites.record.COLUMNS``)
    plus ``file`` (the path relative to ``root``), ``modified`` and ``verified`` (when a
    successful ``lsb verify`` of this very file was recorded, else ``None``)."""
    rows = []
    verified = verified or {}
    for stored in runs:
        row = table_row(stored.result)
        path = stored.path
        row["file"] = path.relative_to(root).as_posix() if root is not None else path.as_posix()
        row["modified"] = stored.modified
        row["verified"] = None if stored.modified else verified.get(stored.digest)
        rows.append(row)
    return pd.DataFrame(rows, columns=RUN_TABLE_COLUMNS)


# --------------------------------------------------------------------------- the store


class _SummaryRow(NamedTuple):
    """A run file's row in the summary: the ``bytes_digest`` (hex) of the bytes it was
    made from, the digest the file carries, whether it was modified, the values of the
    table's ``COLUMNS`` (non-finite floats as JSON's ``NaN``/``Infinity``, which Python
    reads back as they were), and the file's ``stat_signature`` when those bytes were
    read (a file whose signature is unchanged is not read again)."""

    identity: str
    digest: str
    modified: bool
    values: list[Any]
    signature: str = ""


def stat_signature(status: os.stat_result) -> str:
    """A file's size, modification time (ns) and inode: as a version control index does,
    a file whose three are unchanged holds the bytes it held (the store writes each file
    by a rename, so a rewrite gets a new inode too)."""
    return f"{status.st_size}:{status.st_mtime_ns}:{status.st_ino}"


@functools.cache
def _summary_header() -> dict[str, Any]:
    """What a summary must have been made by to be read: this summary version, run
    schema and column list, and the very code that makes rows (``suites.record``)."""
    code = hashlib.sha256(Path(record.__file__).read_bytes()).hexdigest()[:16]
    return {"summary_version": SUMMARY_VERSION, "schema_version": SCHEMA_VERSION,
            "columns": list(COLUMNS), "record_code": code}


@dataclass(frozen=True)
class Skipped:
    """A file under ``runs/`` that is not a valid run, and why (no path in ``reason``)."""

    path: Path
    reason: str
    #: Not read at all: a symbolic link, not a regular file, too large (``file_problem``).
    unread: bool = False


class ResultStore:
    """The run files under ``root/runs``, the submission files their runs were made with
    under ``root/optimizers``, and the record of verified runs under ``root/verified``."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_root()
        self.runs_dir = self.root / "runs"
        self.sources_dir = self.root / "optimizers"
        self.verified_dir = self.root / "verified"

    def source_path(self, name: str, source_hash: str) -> Path:
        """Where the store keeps the submission file whose runs it holds:
        ``optimizers/<name>/<source hash>.py``, so the site shows and links the very
        file wherever the results are copied and the site is built."""
        safe_hash = _SAFE_PART.sub("_", source_hash)
        return self.sources_dir / _SAFE_PART.sub("_", name) / f"{safe_hash}.py"

    def source_hashes(self, name: str) -> list[str]:
        """The source hashes of the submission files kept for ``name``."""
        directory = self.sources_dir / _SAFE_PART.sub("_", name)
        return sorted(path.stem for path, problem in walk_files(directory, ".py",
                                                                  recursive=False)
                      if problem is None)

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
        optimizer = _SAFE_PART.sub("_", spec.optimizer.name)
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
            return read_run(path).result
        except CorruptRecord as err:
            log.warning("skipping results file %s; the run will be made again", err)
            return None

    def save(self, result: RunResult) -> Path:
        """Write a run's file atomically (temporary file in the same directory, then rename).

        Raises ``StoreError`` when a directory (or a link) sits where the file belongs.
        """
        path = self._run_file(result.spec)
        if not result.created:
            result = result.model_copy(update={
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        text = json.dumps(result.to_document(), indent=1, allow_nan=False)
        with atomic_open(path) as file:
            file.write(text)
        return path

    def scan(self) -> tuple[list[StoredRun], list[Skipped]]:
        """Every valid run under ``runs/``, and every skipped file (invalid, a symbolic
        link, too large) with the reason, both in path order."""
        runs, skipped = [], []
        for path, problem in walk_files(self.runs_dir):
            if problem is not None:
                skipped.append(Skipped(path, problem, unread=True))
                continue
            try:
                runs.append(StoredRun(path, *parse_document_cached(path.read_bytes())))
            except OSError as err:
                skipped.append(Skipped(path, f"not readable ({err.strerror})", unread=True))
            except CorruptRecord as err:
                skipped.append(Skipped(path, str(err)))
        return runs, skipped

    def results(self) -> Iterator[RunResult]:
        """Every valid run; the other files are logged (path and reason) and skipped."""
        runs, skipped = self.scan()
        for problem in skipped:
            log.warning("skipping results file %s: %s", problem.path, problem.reason)
        for stored in runs:
            yield stored.result

    def table(self) -> tuple[pd.DataFrame, list[Skipped]]:
        """The runs table of every valid run (``runs_table``, files relative to the root),
        and the skipped files (as ``scan`` reports them).

        Each file's row comes from the summary (``SUMMARY_FILE``) when the summary holds
        one for this path and these very bytes: the file's ``stat_signature`` is the one
        recorded, or else its bytes, read and hashed, are; otherwise the file is parsed.
        The summary is rewritten (atomically) when a row was added, dropped or re-signed,
        and left as it is where the directory cannot be written."""
        summary = self._read_summary()
        entries: dict[str, _SummaryRow] = {}
        skipped, parsed = [], 0
        # Paths relative to the root by slicing: ``relative_to`` per file is a cost at scale.
        runs_prefix = len(str(self.runs_dir))
        runs_name = self.runs_dir.relative_to(self.root).as_posix()
        for name, problem, info in scan_file_stats(self.runs_dir):
            if problem is not None:
                skipped.append(Skipped(Path(name), problem, unread=True))
                continue
            file = runs_name + name[runs_prefix:].replace(os.sep, "/")
            entry = summary.get(file)
            try:
                signature = stat_signature(info)
                if entry is None or not entry.signature or entry.signature != signature:
                    with open(name, "rb") as handle:
                        data = handle.read()
            except OSError as err:
                skipped.append(Skipped(Path(name), f"not readable ({err.strerror})",
                                       unread=True))
                continue
            if entry is None or entry.signature != signature:
                key = bytes_digest(data)
                if entry is None or entry.identity != key.hex():
                    try:
                        result, digest, modified = parse_document_cached(data, key)
                    except CorruptRecord as err:
                        skipped.append(Skipped(Path(name), str(err)))
                        continue
                    row = table_row(result)
                    entry = _SummaryRow(key.hex(), digest, modified,
                                        [row[c] for c in COLUMNS])
                entry = entry._replace(signature=signature)
                parsed += 1
            entries[file] = entry
        if (parsed or entries.keys() != summary.keys()) and self.runs_dir.is_dir():
            self._write_summary(entries)
        verified = self.verified()
        if not entries:
            return runs_table([], self.root), skipped
        # Column by column: the frame ``runs_table`` makes from rows, several times faster.
        values = zip(*(e.values for e in entries.values()), strict=True)  # rows to columns
        columns = dict(zip(COLUMNS, map(list, values), strict=True))
        columns["file"] = list(entries)
        columns["modified"] = [e.modified for e in entries.values()]
        columns["verified"] = [None if e.modified else verified.get(e.digest)
                               for e in entries.values()]
        return pd.DataFrame(columns, columns=RUN_TABLE_COLUMNS), skipped

    def _read_summary(self) -> dict[str, _SummaryRow]:
        """The summary's rows by file; empty when there is none, or it is not a regular
        file, or was made by another version, or any line of it is malformed (then it is
        rebuilt whole: a row is trusted only for the bytes it names)."""
        path = self.root / SUMMARY_FILE
        try:
            if not stat.S_ISREG(path.lstat().st_mode):
                return {}
            lines = path.read_bytes().splitlines()
        except OSError:
            return {}
        rows: dict[str, _SummaryRow] = {}
        try:
            if not lines or json.loads(lines[0]) != _summary_header():
                log.info("summary %s is of another version: rebuilding it", path)
                return {}
            # One decode of all rows (a JSON array of the lines): far fewer calls than a
            # decode per line; a malformed line fails the whole array, and the summary.
            for row in json.loads(b"[" + b",".join(lines[1:]) + b"]"):
                file, identity, digest, modified, values, signature = row
                if not (isinstance(file, str) and isinstance(identity, str)
                        and isinstance(digest, str) and isinstance(modified, bool)
                        and isinstance(values, list) and len(values) == len(COLUMNS)
                        and isinstance(signature, str)):
                    raise ValueError(f"malformed row for {file!r}")
                rows[file] = _SummaryRow(identity, digest, modified, values, signature)
        except (ValueError, TypeError) as err:  # JSONDecodeError is a ValueError
            log.warning("summary %s is corrupt (%s): rebuilding it", path, err)
            return {}
        return rows

    def _write_summary(self, entries: dict[str, _SummaryRow]) -> None:
        """Replace the summary by ``entries`` (in path order, no time stamp: the same
        files give the same bytes); a directory that cannot be written keeps none."""
        lines = [json.dumps(_summary_header(), separators=(",", ":"))]
        lines += [json.dumps([file, e.identity, e.digest, e.modified, e.values, e.signature],
                             separators=(",", ":")) for file, e in entries.items()]
        try:
            with atomic_open(self.root / SUMMARY_FILE) as file:
                file.write("\n".join(lines) + "\n")
        except OSError as err:
            log.debug("summary of %s not written: %s", self.root, err)

    # ----------------------------------------------------------------------- verification

    def verified_path(self, spec: RunSpec) -> Path:
        return self.verified_dir / self.path_for(spec).relative_to(self.runs_dir)

    def mark_verified(self, stored: StoredRun, details: dict[str, Any]) -> Path:
        """Record that ``lsb verify`` re-ran ``stored`` and found every value equal: the
        record names the file's digest, so a later edit of the file voids it."""
        target = self.verified_path(stored.result.spec)
        entry = {"digest": stored.digest, "run_key": stored.result.key,
                 "verified": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 **details}
        with atomic_open(target) as file:
            file.write(json.dumps(entry, indent=1, sort_keys=True))
        return target

    def verified(self) -> dict[str, str]:
        """File digest → the time of the successful verification recorded for it."""
        found: dict[str, str] = {}
        for path, problem in walk_files(self.verified_dir):
            if problem is not None:
                continue
            try:
                entry = json.loads(path.read_bytes())
                found[str(entry["digest"])] = str(entry["verified"])
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("skipping verification record %s: not readable", path)
        return found

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
