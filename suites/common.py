"""Pieces the task suites share: the task base class."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from suites.api import Budget, Chance, Metric, Problem


@dataclass(frozen=True)
class BaseTask:
    """A task of a suite (the ``suites.api.Task`` protocol); subclasses define ``setup``.

    The score is the task metric of a run that finished with status ``ok`` and a finite
    metric; any other run fails and scores ``metric.failed_score``, below every run that
    produced a number (``suites.api.Metric.score_of``).
    """

    name: str
    description: str
    budgets: Budget
    metric: Metric
    tuned_on: str | None = None
    """The public task whose tuned configuration a held-out variant runs with; None: public."""

    @property
    def suite(self) -> str:
        return self.name.split("/", 1)[0]

    def setup(self, seed: int, budget: str) -> Problem:
        """The task's problem for ``seed`` at ``budget`` (each task defines its own)."""
        raise NotImplementedError(f"{type(self).__name__} must define setup")

    def missing_data(self, budget: str) -> str | None:
        """Why ``budget`` cannot run here (files to fetch or generate), or ``None``.

        Tasks that read data files override this; the CLI lists such tasks as "needs
        data" and a sweep skips them with the message instead of failing every run.
        """
        return None

    def prepare(self, budget: str) -> None:
        """Make what the task's runs read at ``budget`` (a generated data set in its cache):
        called by the driver before a sweep, since a sandboxed worker writes only in its
        scratch directory. Nothing by default."""

    def score(self, metrics: Mapping[str, float], steps_run: int, status: str) -> float:
        return self.metric.score_of(metrics, status)

    def chance(self, budget: str) -> Chance | None:
        """The score of a network that learned nothing at ``budget``; ``None``: the task
        has no such level (a loss, a distance)."""
        return None
