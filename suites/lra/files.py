"""The LRA tasks that only exist as files: ``lra/text``, ``lra/retrieval``, ``lra/image``.

No generator can stand in for IMDB reviews, ACL citation pairs or CIFAR-10, so every
budget reads the release's files (``suites.lra.data``) under the data root; without
them ``missing_data`` says what to fetch and where to put it, ``lsb list`` shows the
task as "needs data" and sweeps skip it. The smoke and quick budgets train a small LRU
on a fixed random draw of each split (documents cut to a few hundred bytes); ``full``
is Table 9. Text has no validation split in the release: a fixed tenth of its training
reviews validates.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from suites.lra.data import image, retrieval, text
from suites.lra.data.sequences import BYTE_VOCAB_SIZE
from suites.lra.model import LRUClassifier, LRUConfig, LRURetrieval
from suites.lra.task import LRATask, ReleaseFiles, Scale, Splits

#: Examples are drawn from each split with this seed: the same subset for every run.
SUBSET_SEED = 0
#: Share of Text's training reviews held out for validation.
TEXT_VAL_FRACTION = 0.1


def _small(batch: int, max_length: int | None) -> dict[str, Scale]:
    """Smoke and quick scales of a file task: a 1-block and a 2-block LRU on subsets."""
    return {
        "smoke": Scale(LRUConfig(d_model=32, d_state=32, depth=1), 16, 0, 256, 64, max_length),
        "quick": Scale(LRUConfig(d_model=64, d_state=64, depth=2), batch, 200, 4_000, 500,
                       max_length),
    }


#: Table 9 rows (depth, H, N, batch, dropout); iterations are the tasks' full budgets.
TEXT_SCALES = _small(32, 512) | {
    "full": Scale(LRUConfig(d_model=256, d_state=192, depth=6, dropout=0.1), 32, 2_500,
                  max_length=text.MAX_LENGTH, paper=True),
}
RETRIEVAL_SCALES = _small(32, 256) | {
    "full": Scale(LRUConfig(d_model=128, d_state=256, depth=6, dropout=0.1), 64, 5_000,
                  max_length=retrieval.MAX_LENGTH, paper=True),
}
IMAGE_SCALES = _small(32, None) | {
    "full": Scale(LRUConfig(d_model=512, d_state=384, depth=6, dropout=0.1), 50, 4_500,
                  paper=True),
}


@functools.lru_cache(maxsize=2)
def _text(root: Path, max_length: int):
    return text.load(root, max_length=max_length)


@functools.lru_cache(maxsize=2)
def _retrieval(root: Path, max_length: int):
    return retrieval.load(root, max_length=max_length)


@functools.lru_cache(maxsize=2)
def _image(root: Path, grayscale: bool):
    return image.load(root, grayscale=grayscale)


def _subsets(scale: Scale, train, val, test) -> Splits:
    """The scale's fixed draws of each split: ``train_size`` to train, ``eval_size`` each
    to validate and to test (whole splits when None)."""
    return Splits(
        train.subset(scale.train_size, SUBSET_SEED),
        val.subset(scale.eval_size, SUBSET_SEED),
        test.subset(scale.eval_size, SUBSET_SEED),
    )


@dataclass(frozen=True)
class TextTask(LRATask):
    """IMDB sentiment from bytes (LRA Text)."""

    def release_files(self, budget: str) -> ReleaseFiles:
        files = tuple(f"{s}/{c}" for s in text.SPLITS for c in text.CLASSES)
        return ReleaseFiles(text.RELEASE_DIR, files, source=text.SOURCE)

    def splits(self, budget: str) -> Splits:
        scale = self.scales[budget]
        data = _text(self.root, scale.max_length)
        count = max(1, int(TEXT_VAL_FRACTION * len(data["train"])))
        train, val = data["train"].split_off(count, SUBSET_SEED)
        return _subsets(scale, train, val, data["test"])

    def build_model(self, scale: Scale) -> nn.Module:
        return LRUClassifier(scale.config, text.NUM_CLASSES, vocab_size=BYTE_VOCAB_SIZE)


@dataclass(frozen=True)
class RetrievalTask(LRATask):
    """Whether one paper cites another, from both documents' bytes (LRA Retrieval)."""

    def release_files(self, budget: str) -> ReleaseFiles:
        return ReleaseFiles(
            retrieval.RELEASE_DIR, tuple(retrieval.split_file(s) for s in retrieval.SPLITS)
        )

    def splits(self, budget: str) -> Splits:
        scale = self.scales[budget]
        data = _retrieval(self.root, scale.max_length)
        return _subsets(scale, data["train"], data["eval"], data["test"])

    def build_model(self, scale: Scale) -> nn.Module:
        return LRURetrieval(scale.config, retrieval.NUM_CLASSES, vocab_size=BYTE_VOCAB_SIZE)


@dataclass(frozen=True)
class ImageTask(LRATask):
    """CIFAR-10 classes from the 1,024 pixels in raster order (sCIFAR / LRA Image)."""

    grayscale: bool = False  # True: the LRA's grey levels; False: the LRU paper's colour

    def release_files(self, budget: str) -> ReleaseFiles:
        return ReleaseFiles(
            image.RELEASE_DIR, image.TRAIN_FILES + image.TEST_FILES, source=image.SOURCE
        )

    def splits(self, budget: str) -> Splits:
        scale = self.scales[budget]
        data = _image(self.root, self.grayscale)
        return _subsets(scale, data["train"], data["val"], data["test"])

    def build_model(self, scale: Scale) -> nn.Module:
        channels = 1 if self.grayscale else 3
        return LRUClassifier(scale.config, image.NUM_CLASSES, d_input=channels)
