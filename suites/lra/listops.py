"""The ``lra/listops`` task: a deep LRU classifies ListOps expressions (thesis §5.3, Table 5).

At the ``full`` budget the data are the LRA release's (or what ``python -m
suites.lra.data listops`` writes in its layout: depth ≤ 10, ≤ 10 arguments, lengths
500–2000) and the model is Table 9's: 6 blocks, H = 128, N = 256, batch 32, 80k steps.
The ``smoke`` and ``quick`` budgets run on expressions of the same generator with depth
≤ 4, ≤ 5 arguments and lengths 21–79, drawn once with a fixed seed, and a 2-block LRU
with H = N = 64, so that they finish on a CPU. Every budget uses Table 9's LR factor 0.5
for the recurrent parameters.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from torch import nn

from suites.lra.data import listops
from suites.lra.data.sequences import SequenceData
from suites.lra.model import LRUClassifier, LRUConfig
from suites.lra.task import LRATask, ReleaseFiles, Scale, Splits

#: Table 9, ListOps: the recurrent parameters' step size is this times the optimizer's.
LR_FACTOR = 0.5
#: Generator settings of the short expressions of the smoke and quick budgets.
SHORT_SETTINGS = {"max_depth": 4, "max_args": 5, "min_length": 20, "max_length": 80}
SHORT_TRAIN, SHORT_TEST, SHORT_VAL = 5_000, 1_000, 1_000
#: The short data set is one draw, the same for every run seed (a task's
#: ``short_data_seed``; the public task's is this one).
SHORT_DATA_SEED = 0

SCALES = {
    "smoke": Scale(LRUConfig(d_model=32, d_state=32, depth=1), 32, 0, 1_000, 200),
    "quick": Scale(LRUConfig(d_model=64, d_state=64, depth=2), 32, 200),
    "full": Scale(LRUConfig(d_model=128, d_state=256, depth=6), 32, 5_000, paper=True),
}


def short_splits(
    seed: int = SHORT_DATA_SEED, **settings: int
) -> tuple[SequenceData, SequenceData, SequenceData]:
    """(train, test, val) of the smoke and quick budgets, drawn by ``seed`` with
    ``SHORT_SETTINGS`` updated by ``settings`` (validation drawn last, so that train and
    test are the first draws of the generator)."""
    return _draw_short_splits(seed, tuple(sorted({**SHORT_SETTINGS, **settings}.items())))


def short_train(seed: int = SHORT_DATA_SEED, **settings: int) -> SequenceData:
    """The training split of the smoke and quick budgets alone: the generator's first
    draws, so equal to ``short_splits(seed, **settings)[0]`` without drawing the held-out
    examples."""
    return _draw_short_train(seed, tuple(sorted({**SHORT_SETTINGS, **settings}.items())))


@functools.cache
def _draw_short_train(seed: int, settings: tuple[tuple[str, int], ...]) -> SequenceData:
    return listops.from_examples(listops.generate(SHORT_TRAIN, seed=seed, **dict(settings)))


@functools.cache
def _draw_short_splits(
    seed: int, settings: tuple[tuple[str, int], ...]
) -> tuple[SequenceData, SequenceData, SequenceData]:
    examples = listops.generate(SHORT_TRAIN + SHORT_TEST + SHORT_VAL, seed=seed, **dict(settings))
    cuts = [0, SHORT_TRAIN, SHORT_TRAIN + SHORT_TEST, len(examples)]
    return tuple(
        listops.from_examples(examples[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    )


@dataclass(frozen=True)
class ListOpsTask(LRATask):
    """Test accuracy of a deep LRU on ListOps after the budget's steps.

    ``short_data_seed`` and ``short_settings`` (which update ``SHORT_SETTINGS``): the draw
    of the smoke and quick expressions.
    """

    short_data_seed: int = SHORT_DATA_SEED
    short_settings: Mapping[str, int] = field(default_factory=dict)

    def release_files(self, budget: str) -> ReleaseFiles | None:
        if budget != "full":
            return None
        files = tuple(listops.split_file(s) for s in listops.SPLITS)
        return ReleaseFiles(listops.RELEASE_DIR, files, generate="listops")

    def splits(self, budget: str) -> Splits:
        if budget == "full":
            data = listops.load(self.root, ("train", "val", "test"))
            return Splits(data["train"], data["val"], data["test"])
        train, test, val = short_splits(self.short_data_seed, **self.short_settings)
        scale = self.scales[budget]
        return Splits(
            train.head(scale.train_size), val.head(scale.eval_size), test.head(scale.eval_size)
        )

    def train_split(self, budget: str) -> SequenceData:
        if budget == "full":
            return listops.load(self.root, ("train",))["train"]
        return short_train(self.short_data_seed, **self.short_settings).head(
            self.scales[budget].train_size)

    def build_model(self, scale: Scale) -> nn.Module:
        return LRUClassifier(scale.config, listops.NUM_CLASSES, vocab_size=len(listops.VOCAB))
