"""What every task of the ``lra`` suite shares: budget scales and one ``setup``.

A task says where its splits come from (``splits``) and which network reads them
(``build_model``); the rest is common: Table 9's LR factor for the recurrent parameters,
App. E.3's warm-up + cosine schedule at every budget (without it a short run's last
large steps leave batch norm's running statistics behind the weights, and evaluation
collapses to one class), validation accuracy for choosing the configuration, test
accuracy for the score, and at the ``full`` budget Table 9's weight decay.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from suites.api import Chance, Metric, Problem
from suites.common import BaseTask
from suites.lra.data.release import default_root, find_release_dir, missing_files_error
from suites.lra.model import LRUConfig
from suites.lra.problem import Split, classification_problem, warmup_cosine

#: Score: test accuracy; tuning picks the configuration by validation accuracy.
TEST_ACCURACY = Metric(
    name="test_accuracy", higher_is_better=True, unit="fraction", select_by="val_accuracy"
)
#: The part of every task description that this module decides.
SCORE_NOTE = (
    "Score: test accuracy (higher is better), the configuration chosen on validation; "
    "every budget warms the step size up over 10% of the steps, then decays it by a "
    "cosine (App. E.3). "
)
#: Table 9: weight decay of the non-recurrent parameters in the paper-scale runs.
FULL_WEIGHT_DECAY = 0.05


@dataclass(frozen=True)
class Scale:
    """What one budget trains: model, batch, evaluation period and data sizes.

    ``train_size``/``eval_size``: examples drawn (by a fixed seed) from the training split
    and from each of validation and test; None keeps a whole split. ``max_length``:
    tokens kept per document (byte-level tasks). ``paper`` marks Table 9's settings: the
    weight decay above instead of the optimizer's own.
    """

    config: LRUConfig
    batch_size: int
    eval_every: int
    train_size: int | None = None
    eval_size: int | None = None
    max_length: int | None = None
    paper: bool = False


@dataclass(frozen=True)
class ReleaseFiles:
    """Files a budget reads: ``files`` in the directory ``relative`` under the data root;
    ``generate``: the ``python -m suites.lra.data`` command that writes them, if any;
    ``source``: the archive to download."""

    relative: str
    files: tuple[str, ...]
    generate: str | None = None
    source: str = "the LRA release (lra_release.gz)"


@dataclass(frozen=True)
class Splits:
    train: Split
    val: Split
    test: Split


@dataclass(frozen=True)
class LRATask(BaseTask):
    """A classification task of the suite; subclasses define ``splits`` and ``build_model``.

    ``lr_factor``: Table 9's step-size factor of Λ, γ and B. ``data_root``: where the
    release files are (default ``$LSB_LRA_ROOT`` or ``./data``).
    """

    lr_factor: float = 1.0
    scales: Mapping[str, Scale] = field(default_factory=dict)
    data_root: Path | None = None

    @property
    def root(self) -> Path:
        return self.data_root or default_root()

    def release_files(self, budget: str) -> ReleaseFiles | None:
        """The files ``budget`` reads, or None when it generates its data."""
        return None

    def missing_data(self, budget: str) -> str | None:
        needed = self.release_files(budget)
        if needed is not None and self.tuned_on is not None:
            return (
                f"{self.name} is a held-out variant of {self.tuned_on}'s generated data, "
                f"defined at the budgets that generate them; at {budget!r} it would read "
                f"{self.tuned_on}'s own files"
            )
        if needed is None or find_release_dir(self.root, needed.relative, needed.files):
            return None
        error = missing_files_error(
            self.root, needed.relative, needed.files, generate=needed.generate,
            source=needed.source,
        )
        return str(error)

    def chance(self, budget: str) -> Chance | None:
        """The share of the test split's most frequent class at ``budget`` (None when the
        split's files are missing)."""
        if self.missing_data(budget) is not None:
            return None
        labels = getattr(self.splits(budget).test, "labels", None)
        if labels is None or len(labels) == 0:
            return None
        majority = int(torch.bincount(labels).max())
        return Chance(score=majority / len(labels), examples=len(labels))

    def splits(self, budget: str) -> Splits:
        raise NotImplementedError(f"{type(self).__name__} must define splits")

    def train_split(self, budget: str) -> Split:
        """The training split alone: all that the training worker loads (tasks that can
        read or draw it without the others override this)."""
        return self.splits(budget).train

    def prepare(self, budget: str) -> None:
        """Read or draw every split of ``budget`` once, so that generated ones are in the
        cache before a worker (which may not write there) reads them."""
        if self.missing_data(budget) is None:
            self.train_split(budget)
            self.held_out(budget)

    def held_out(self, budget: str) -> tuple[Split, Split]:
        """(validation, test): loaded only by the process that evaluates."""
        data = self.splits(budget)
        return data.val, data.test

    def build_model(self, scale: Scale) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} must define build_model")

    def setup(self, seed: int, budget: str) -> Problem:
        steps = self.budgets.steps(budget)
        scale = self.scales[budget]
        return classification_problem(
            self.build_model(scale),
            self.train_split(budget),
            functools.partial(self.held_out, budget),
            steps=steps,
            batch_size=scale.batch_size,
            lr_factor=self.lr_factor,
            eval_every=scale.eval_every,
            seed=seed,
            lr_schedule=warmup_cosine(steps),
            weight_decay=FULL_WEIGHT_DECAY if scale.paper else None,
        )
