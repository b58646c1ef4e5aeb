"""Text (IMDB reviews, byte level): loader for the Large Movie Review Dataset's files.

The LRA reads IMDB through TensorFlow Datasets; here the source is the dataset's own
release, ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` (25,000 reviews per
split, half positive). Reviews are read as bytes and cut to ``max_length`` bytes
(4,096 by default, the LRA's longest setting); label 1 is positive.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from suites.lra.data.release import find_release_dir, missing_files_error
from suites.lra.data.sequences import SequenceData, byte_tokens

RELEASE_DIR = "aclImdb"
SPLITS = ("train", "test")
CLASSES = ("neg", "pos")
MAX_LENGTH = 4_096
NUM_CLASSES = 2
#: Where the files come from: not part of the LRA release, which reads IMDB through TFDS.
SOURCE = "the Large Movie Review Dataset (aclImdb_v1.tar.gz)"


def read_split(directory: Path, max_length: int = MAX_LENGTH) -> SequenceData:
    """Every review of ``directory/{neg,pos}/*.txt``, files in name order, negatives first."""
    sequences, labels = [], []
    for label, name in enumerate(CLASSES):
        files = sorted((directory / name).glob("*.txt"))
        if not files:
            raise ValueError(f"{directory / name}: no reviews (*.txt)")
        for file in files:
            tokens = byte_tokens(file.read_bytes(), max_length)
            if not tokens:
                raise ValueError(f"{file}: empty review")
            sequences.append(tokens)
            labels.append(label)
    return SequenceData.from_token_lists(sequences, labels)


def load(
    root: Path, splits: Sequence[str] = SPLITS, max_length: int = MAX_LENGTH
) -> dict[str, SequenceData]:
    """The splits under ``root``; missing directories raise one error listing them."""
    needed = [f"{split}/{name}" for split in splits for name in CLASSES]
    directory = find_release_dir(Path(root), RELEASE_DIR, needed)
    if directory is None:
        raise missing_files_error(Path(root), RELEASE_DIR, needed, source=SOURCE)
    return {split: read_split(directory / split, max_length) for split in splits}
