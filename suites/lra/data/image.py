"""Image (CIFAR-10 as pixel sequences): loader for the CIFAR-10 python release.

``cifar-10-batches-py/data_batch_{1..5}`` and ``test_batch`` are pickles of dicts whose
``b"data"`` is ``(10000, 3072)`` uint8, each row the red, green and blue 32×32 planes,
and ``b"labels"`` the classes. An image becomes the sequence of its 1,024 pixels, row by
row: three channels (the LRU paper's sCIFAR) or one grey level
``0.2989 R + 0.5870 G + 0.1140 B`` (the LRA's Image task), scaled to [0, 1]. As in the
LRA, the first 90% of the training batches train (45k) and the last 10% validate (5k).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from suites.lra.data.release import find_release_dir, missing_files_error
from suites.lra.data.sequences import SequenceData

RELEASE_DIR = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
SPLITS = ("train", "val", "test")
TRAIN_FRACTION = 0.9
NUM_CLASSES = 10
#: Where the files come from: CIFAR-10's python version (the LRA reads it through TFDS).
SOURCE = "CIFAR-10's python version (cifar-10-python.tar.gz)"
#: ITU-R 601 luma weights, as ``tf.image.rgb_to_grayscale`` uses.
GREY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)


def read_batches(paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 ``(n, 32, 32, 3)``, labels ``(n,)``) of pickled CIFAR batches."""
    images, labels = [], []
    for path in paths:
        with open(path, "rb") as f:
            try:
                batch = pickle.load(f, encoding="bytes")
            except (pickle.UnpicklingError, EOFError, ValueError) as err:
                raise ValueError(f"{path}: not a CIFAR-10 pickle ({err})") from None
        if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
            raise ValueError(f"{path}: expected a dict with b'data' and b'labels'")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(batch[b"labels"]):
            raise ValueError(
                f"{path}: expected data of shape (n, 3072) and n labels, got {data.shape} "
                f"and {len(batch[b'labels'])}"
            )
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def to_sequences(images: np.ndarray, labels: np.ndarray, grayscale: bool) -> SequenceData:
    pixels = images.astype(np.float32) / 255.0
    if grayscale:
        pixels = pixels @ GREY_WEIGHTS[:, None]
    inputs = torch.from_numpy(np.ascontiguousarray(pixels.reshape(len(images), 32 * 32, -1)))
    return SequenceData(inputs, None, torch.from_numpy(labels))


def load(
    root: Path, splits: Sequence[str] = SPLITS, *, grayscale: bool = False
) -> dict[str, SequenceData]:
    """The splits as ``(n, 1024, 3)`` (or ``(n, 1024, 1)`` grey) pixel sequences."""
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown splits {unknown}: expected some of {SPLITS}")
    files = list(TRAIN_FILES + TEST_FILES)
    directory = find_release_dir(Path(root), RELEASE_DIR, files)
    if directory is None:
        raise missing_files_error(Path(root), RELEASE_DIR, files, source=SOURCE)
    data = {}
    if {"train", "val"} & set(splits):
        images, labels = read_batches([directory / f for f in TRAIN_FILES])
        cut = int(TRAIN_FRACTION * len(images))
        parts = {"train": slice(0, cut), "val": slice(cut, None)}
        for split in ("train", "val"):
            if split in splits:
                data[split] = to_sequences(images[parts[split]], labels[parts[split]], grayscale)
    if "test" in splits:
        images, labels = read_batches([directory / f for f in TEST_FILES])
        data["test"] = to_sequences(images, labels, grayscale)
    return {split: data[split] for split in splits}
