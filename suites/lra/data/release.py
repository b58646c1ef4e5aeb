"""Where the files of the Long Range Arena release are, under a user's data root.

The release unpacks to ``lra_release/`` with ListOps, Retrieval and Text directly inside
and Pathfinder one level deeper (``lra_release/lra_release/pathfinder32/…``). A root may
be that directory, its parent, or the nested one; each data set is looked for in all
three so that any of them works for every data set.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

#: The data root when none is given: the environment variable, else ``./data``.
ROOT_ENV_VAR = "LSB_LRA_ROOT"
#: Where generated data sets are kept: the environment variable, else ``~/.cache/lsb``.
CACHE_ENV_VAR = "LSB_DATA_DIR"


def default_root() -> Path:
    return Path(os.environ.get(ROOT_ENV_VAR, "data"))


def cache_dir() -> Path:
    """The directory of data generated on the fly (created by whoever writes into it)."""
    return Path(os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "lsb")


def candidate_dirs(root: Path, relative: str) -> list[Path]:
    """The directories in which ``relative`` may lie under ``root``, in search order."""
    return [
        root / relative,
        root / "lra_release" / relative,
        root / "lra_release" / "lra_release" / relative,
    ]


def find_release_dir(root: Path, relative: str, files: Sequence[str]) -> Path | None:
    """The first candidate directory that holds every one of ``files``."""
    for directory in candidate_dirs(root, relative):
        if all((directory / f).exists() for f in files):
            return directory
    return None


def missing_files_error(
    root: Path,
    relative: str,
    files: Sequence[str],
    *,
    generate: str | None = None,
    source: str = "the LRA release (lra_release.gz)",
) -> FileNotFoundError:
    """One error that lists every path looked for and how to get the files (``source``:
    the archive that holds them; ``generate``: the command that writes them)."""
    looked = [str(d / f) for d in candidate_dirs(root, relative) for f in files]
    how = f"download {source} and unpack it under the root"
    if generate:
        how = (
            f"generate them with `python -m suites.lra.data {generate} --root {root}`, "
            f"or {how}"
        )
    return FileNotFoundError(
        f"LRA data {relative!r} not found under {root} (set {ROOT_ENV_VAR} or pass a root); "
        "looked for:\n  " + "\n  ".join(looked) + f"\nTo get them, {how}."
    )
