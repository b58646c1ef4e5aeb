"""What the site's data modules share: the record of a skipped file, natural sorting."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FileProblem:
    """A results file that the site skipped, and why."""

    path: str  # relative to the results directory, with forward slashes
    reason: str
    #: Whether the site's ``raw/`` holds a copy (not of a symbolic link or an oversized file).
    copied: bool = True


def natural_key(text: str) -> list[Any]:
    """Sort key that orders "depth-8" before "depth-16"."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]
