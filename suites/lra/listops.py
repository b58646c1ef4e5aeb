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
from dataclasses import dataclass
from pathlib import Path

from suites.api import Problem
from suites.common import BaseTask
from suites.lra.data import listops
from suites.lra.data.release import default_root
from suites.lra.data.sequences import SequenceData
from suites.lra.model import LRUClassifier, LRUConfig
from suites.lra.problem import classification_problem

#: Table 9, ListOps: the recurrent parameters' step size is this times the optimizer's.
LR_FACTOR = 0.5
#: Generator settings of the short expressions of the smoke and quick budgets.
SHORT_SETTINGS = {"max_depth": 4, "max_args": 5, "min_length": 20, "max_length": 80}
SHORT_TRAIN, SHORT_TEST = 5_000, 1_000
#: The short data set is one draw, the same for every run seed.
SHORT_DATA_SEED = 0


@dataclass(frozen=True)
class Scale:
    """What one budget trains: model, batch size, evaluation period, data size."""

    config: LRUConfig
    batch_size: int
    eval_every: int
    train_size: int | None = None  # None: the whole split
    test_size: int | None = None


SCALES = {
    "smoke": Scale(LRUConfig(d_model=32, d_state=32, depth=1), 32, 0, 1_000, 200),
    "quick": Scale(LRUConfig(d_model=64, d_state=64, depth=2), 32, 250),
    "full": Scale(LRUConfig(d_model=128, d_state=256, depth=6), 32, 5_000),
}


@functools.cache
def short_splits() -> tuple[SequenceData, SequenceData]:
    """(train, test) of the smoke and quick budgets."""
    examples = listops.generate(SHORT_TRAIN + SHORT_TEST, seed=SHORT_DATA_SEED, **SHORT_SETTINGS)
    return (
        listops.from_examples(examples[:SHORT_TRAIN]),
        listops.from_examples(examples[SHORT_TRAIN:]),
    )


@dataclass(frozen=True)
class ListOpsTask(BaseTask):
    """Test accuracy of a deep LRU on ListOps after the budget's steps."""

    data_root: Path | None = None  # the release's root at the full budget (default: env)

    def splits(self, budget: str) -> tuple[SequenceData, SequenceData]:
        if budget == "full":
            data = listops.load(self.data_root or default_root(), ("train", "test"))
            return data["train"], data["test"]
        train, test = short_splits()
        scale = SCALES[budget]
        return train.head(scale.train_size), test.head(scale.test_size)

    def setup(self, seed: int, budget: str) -> Problem:
        steps = self.budgets.steps(budget)
        scale = SCALES[budget]
        train, test = self.splits(budget)
        model = LRUClassifier(scale.config, listops.NUM_CLASSES, vocab_size=len(listops.VOCAB))
        return classification_problem(
            model,
            train,
            test,
            steps=steps,
            batch_size=scale.batch_size,
            lr_factor=LR_FACTOR,
            eval_every=scale.eval_every,
            seed=seed,
        )
