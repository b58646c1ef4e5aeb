"""Retrieval (ACL Anthology Network citation pairs) in the LRA release layout: loader.

``tsv_data/new_aan_pairs.{train,eval,test}.tsv``: no header, five tab-separated
columns ``label, id1, id2, text1, text2``; the label (written ``0``/``1`` or
``0.0``/``1.0``) says whether one paper cites the other. Documents are read byte by
byte and cut to 4,000 bytes each, as in the LRA input pipeline.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from suites.lra.data.release import find_release_dir, missing_files_error
from suites.lra.data.sequences import SequenceData, byte_tokens

RELEASE_DIR = "tsv_data"
SPLITS = ("train", "eval", "test")
MAX_LENGTH = 4_000
NUM_CLASSES = 2


def split_file(split: str) -> str:
    return f"new_aan_pairs.{split}.tsv"


@dataclass(frozen=True)
class PairData:
    """Two documents per example (each padded token ids with lengths) and the labels."""

    first: SequenceData
    second: SequenceData

    @property
    def labels(self) -> torch.Tensor:
        return self.first.labels

    def __len__(self) -> int:
        return len(self.first)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """(first, second, first lengths, second lengths, labels): the two-tower inputs."""
        first, first_lengths, labels = self.first.batch(index)
        second, second_lengths, _ = self.second.batch(index)
        return first, second, first_lengths, second_lengths, labels

    def subset(self, count: int | None, seed: int) -> PairData:
        """``count`` examples drawn without replacement by ``seed`` (all when None)."""
        index = self.first.draw(count, seed)
        return PairData(self.first.take(index), self.second.take(index))


def read_split(path: Path, max_length: int = MAX_LENGTH) -> PairData:
    """One TSV file; a malformed line raises ``ValueError`` with file and line."""
    firsts, seconds, labels = [], [], []
    # Abstracts can be longer than the csv module's default field limit.
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        for fields in reader:
            where = f"{path}:{reader.line_num}"
            if not fields:
                continue
            if len(fields) != 5:
                raise ValueError(
                    f"{where}: expected 5 tab-separated fields (label, id1, id2, text1, text2), "
                    f"got {len(fields)}"
                )
            try:
                label = float(fields[0])
            except ValueError:
                label = -1.0
            if label not in (0.0, 1.0):
                raise ValueError(f"{where}: the label must be 0 or 1, got {fields[0]!r}")
            documents = [byte_tokens(text.encode("utf-8"), max_length) for text in fields[3:]]
            if not all(documents):
                raise ValueError(f"{where}: empty document")
            firsts.append(documents[0])
            seconds.append(documents[1])
            labels.append(int(label))
    if not labels:
        raise ValueError(f"{path}: no examples")
    return PairData(
        SequenceData.from_token_lists(firsts, labels),
        SequenceData.from_token_lists(seconds, labels),
    )


def load(
    root: Path, splits: Sequence[str] = SPLITS, max_length: int = MAX_LENGTH
) -> dict[str, PairData]:
    """The release's splits under ``root``; missing files raise one error listing them."""
    files = [split_file(s) for s in splits]
    directory = find_release_dir(Path(root), RELEASE_DIR, files)
    if directory is None:
        raise missing_files_error(Path(root), RELEASE_DIR, files)
    return {s: read_split(directory / f, max_length) for s, f in zip(splits, files, strict=True)}
