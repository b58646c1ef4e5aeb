"""Which files under a results directory are read: regular files only (a symbolic link is
reported, never followed), none over ``MAX_FILE_BYTES``, found in one sorted scan with
one status call per file."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

#: A results file larger than this is not read (the site lists it instead of copying it).
MAX_FILE_BYTES = 10 * 2**20


def file_problem(path: Path | str, info: os.stat_result | None = None) -> str | None:
    """Why ``path`` (whose ``lstat`` is ``info`` when given) is not read as a results file
    (a symbolic link, not a regular file, over ``MAX_FILE_BYTES``), or ``None``. Never
    follows a link."""
    info = os.lstat(path) if info is None else info
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
    for path, problem, _ in walk_file_stats(directory, suffix, recursive=recursive):
        yield path, problem


def walk_file_stats(directory: Path, suffix: str = ".json", *, recursive: bool = True
                    ) -> Iterator[tuple[Path, str | None, os.stat_result | None]]:
    """``walk_files`` with each entry's ``lstat`` (``None`` where it could not be read):
    one directory scan, one status call per file."""
    for name, problem, info in scan_file_stats(directory, suffix, recursive=recursive):
        yield Path(name), problem, info


def scan_file_stats(directory: Path, suffix: str = ".json", *, recursive: bool = True
                    ) -> Iterator[tuple[str, str | None, os.stat_result | None]]:
    """``walk_file_stats`` with each path as the string ``os.path.join(str(directory),
    ...)`` makes (no ``Path`` per file: at tens of thousands of files it counts)."""
    if directory.is_symlink():
        yield str(directory), file_problem(directory), None
        return
    if not directory.is_dir():
        return
    yield from _scan(str(directory), suffix, recursive)


def _scan(directory: str, suffix: str, recursive: bool
          ) -> Iterator[tuple[str, str | None, os.stat_result | None]]:
    try:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError:
        return
    folders = []
    for entry in entries:
        link = entry.is_symlink()
        if not link and entry.is_dir(follow_symlinks=False):
            folders.append(entry.path)
            continue
        if not (entry.name.endswith(suffix) or link):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError as err:
            yield entry.path, f"not readable ({err.strerror})", None
            continue
        yield entry.path, file_problem(entry.path, info), info
    if recursive:
        for folder in folders:
            yield from _scan(folder, suffix, recursive)
