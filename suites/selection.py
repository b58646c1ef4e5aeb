"""Which runs count: the runs table read from a store, checked against the registered
tasks' metrics, one track, each optimizer's latest version, and each run's success.

Scoring rules come from the registered task, never from a run file: a run whose recorded
metric (name, orientation, target, tolerance, baseline) differs from its registered task's
is not ranked (``registered_metrics``; the site lists it under Problems). A task that no
installed suite registers keeps the metric its runs recorded.

A run succeeds when it finished ``ok`` with a finite score that beats its metric's
trivial baselines (``suites.api.Metric.beats_baseline``): a loss that must beat its value
at the initial parameters and does not, or an accuracy not above the chance ceiling the
run recorded (chance plus three binomial standard errors), is a failure, not a score.
"""

from __future__ import annotations

import collections
import functools
import inspect
import logging
import math
import weakref
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from suites.api import Metric
from suites.record import COLUMNS, RunResult, table_row
from suites.results import ResultStore

log = logging.getLogger(__name__)

#: The metric columns of the runs table that must equal the registered task's metric.
METRIC_COLUMNS = {"metric": "name", "higher_is_better": "higher_is_better",
                  "target": "target", "tolerance": "tolerance",
                  "must_beat_initial": "must_beat_initial"}


def runs_frame(results: Iterable[RunResult]) -> pd.DataFrame:
    """One row per run (``suites.record.table_row``): the runs table without file columns."""
    return pd.DataFrame([table_row(r) for r in results], columns=list(COLUMNS))


def load_runs(root: str | Path | None = None, track: str | None = "external") -> pd.DataFrame:
    """The runs table of every readable run under a results directory (``suites.results``)
    of one ``track`` (None: all): each track is ranked on its own."""
    table, skipped = ResultStore(root).table()
    for problem in skipped:
        log.warning("skipping results file %s: %s", problem.path, problem.reason)
    table, disagreeing = registered_metrics(table)
    for file, reason in disagreeing.items():
        log.warning("not ranking results file %s: %s", file, reason)
    return of_track(table, track)


def of_track(runs: pd.DataFrame, track: str | None) -> pd.DataFrame:
    """The runs of ``track`` (None: all of them)."""
    return runs if track is None else runs[runs["track"] == track]


# --------------------------------------------------------------------------- selection

#: The tables already computed: (function, id of the runs table, arguments) → (a weak
#: reference to that table, the result). Every table of a board is derived from the same
#: few (the selected runs, ``leaderboard.task_table``, the sensitivity points), which one
#: ``lsb show`` or site build would otherwise compute again for each column: each is
#: computed once per runs table. Runs tables are values (derived with ``assign`` and
#: filters, never changed in place).
_COMPUTED: collections.OrderedDict[tuple, tuple[weakref.ref, pd.DataFrame]] = \
    collections.OrderedDict()
_COMPUTED_SIZE = 64


def once_per_runs(function):
    """``function(runs, *args)``, computed once per runs table and arguments (a copy of
    the result is returned, so a caller's changes never reach the next one)."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def wrapper(runs: pd.DataFrame, *args, **kwargs) -> pd.DataFrame:
        bound = signature.bind(runs, *args, **kwargs)
        bound.apply_defaults()  # f(runs, "quick") and f(runs, budget="quick") are one call
        arguments = tuple(bound.arguments.items())[1:]  # all but the runs table
        key = (function, id(runs), runs.shape, arguments)
        try:
            found = _COMPUTED.get(key)
        except TypeError:  # an argument that cannot be a key (a list): computed each time
            return function(runs, *args, **kwargs)
        if found is not None and found[0]() is runs:
            _COMPUTED.move_to_end(key)
            return found[1].copy()
        result = function(runs, *args, **kwargs)
        _COMPUTED[key] = (weakref.ref(runs), result)
        while len(_COMPUTED) > _COMPUTED_SIZE:
            _COMPUTED.popitem(last=False)
        return result.copy()

    return wrapper



@once_per_runs
def latest_versions(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of each optimizer's latest source hash (the one with the newest run)."""
    if runs.empty:
        return runs
    newest = runs.groupby(["optimizer", "source_hash"])["created"].max().reset_index()
    latest = newest.sort_values("created").groupby("optimizer").tail(1)
    # One latest hash per optimizer: a run counts when its hash is its optimizer's (vectorised).
    latest_hash = runs["optimizer"].map(latest.set_index("optimizer")["source_hash"])
    return runs[(runs["source_hash"] == latest_hash).to_numpy(dtype=bool)]


def superseded_versions(runs: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer, the source hashes whose runs are ignored, with their run counts."""
    current = latest_versions(runs)[["optimizer", "source_hash"]].drop_duplicates()
    old = runs.merge(current, on=["optimizer", "source_hash"], how="left", indicator=True)
    old = old[old["_merge"] == "left_only"]
    return old.groupby(["optimizer", "source_hash"]).size().rename("runs").reset_index()


@once_per_runs
def select(runs: pd.DataFrame, budget: str, phase: str | tuple[str, ...], suite: str | None
           ) -> pd.DataFrame:
    """The runs of ``budget`` and ``phase`` (one or several) of each optimizer's latest
    version (of ``suite``, or all), with ``success``: finished ``ok`` with a finite score
    that beats the metric's trivial baseline (``beats_baseline``)."""
    runs = latest_versions(runs)
    phases = (phase,) if isinstance(phase, str) else phase
    runs = runs[(runs["budget"] == budget) & runs["phase"].isin(phases)]
    if suite is not None:
        runs = runs[runs["suite"] == suite]
    runs = runs.assign(
        tolerance=runs["tolerance"].astype(float).fillna(Metric("", False).tolerance))
    return runs.assign(success=(runs["status"] == "ok") & np.isfinite(runs["score"].astype(float))
                       & beats_baseline(runs))


def beats_baseline(runs: pd.DataFrame) -> pd.Series:
    """Per run, whether its score beats the metric's trivial baseline
    (``Metric.beats_baseline``): its own score at the initial parameters where the metric
    must beat it; every run of a metric without one."""
    beats = pd.Series(True, index=runs.index, dtype=bool)
    ceiling = runs["chance_ceiling"].astype(float)
    must = runs["must_beat_initial"].map(flag).astype(bool) | np.isfinite(ceiling)
    for _, rows in runs[must].groupby("task", sort=False):
        metric = metric_of(rows)
        beats[rows.index] = [metric.beats_baseline(float(score), float(initial), float(top))
                             for score, initial, top in zip(
                                 rows["score"], rows["initial_score"], ceiling[rows.index],
                                 strict=True)]
    return beats


def metric_of(rows: pd.DataFrame) -> Metric:
    """The metric of a task, rebuilt from the columns of its runs (``runs_frame``, or a
    table with those columns), with the chance level its runs recorded (``recorded_chance``)."""
    first = rows.iloc[0]
    return Metric(name=str(first["metric"]), higher_is_better=bool(first["higher_is_better"]),
                  tolerance=0.1 if pd.isna(first["tolerance"]) else float(first["tolerance"]),
                  must_beat_initial=flag(first.get("must_beat_initial")),
                  chance=recorded_chance(rows))


def recorded_chance(rows: pd.DataFrame) -> float | None:
    """The chance level the runs of one task recorded (``MetricRecord.chance``), ``None``
    when none did. Runs of one task and budget record the same one; of several budgets
    (never compared with each other) the highest."""
    if "chance" not in rows:
        return None
    values = rows["chance"].astype(float)
    values = values[np.isfinite(values)]
    return float(values.max()) if len(values) else None


def flag(value: object) -> bool:
    """A boolean column's value; a missing one (None, NaN) is False."""
    return False if value is None or pd.isna(value) else bool(value)


def oriented(frame: pd.DataFrame) -> pd.Series:
    """Each run's score as lower-is-better (``Metric.oriented``), a failure being ``inf``."""
    values = pd.Series(math.inf, index=frame.index, dtype=float)
    for _, rows in frame.groupby("task", sort=False):
        metric = metric_of(rows)
        values[rows.index] = [metric.oriented(float(score), bool(ok))
                              for score, ok in zip(rows["score"], rows["success"], strict=True)]
    return values


def registered_metrics(runs: pd.DataFrame, metrics: dict[str, Metric] | None = None
                       ) -> tuple[pd.DataFrame, dict[str, str]]:
    """``runs`` without the runs whose recorded metric differs from their registered task's
    (``metrics``: task name → metric, by default every installed suite's tasks and
    held-out variants), and those runs' files with the reason. A run that recorded no
    metric takes its registered task's."""
    if runs.empty:
        return runs, {}
    if metrics is None:
        metrics = registered_task_metrics()
    bad: dict[str, str] = {}
    keep = pd.Series(True, index=runs.index, dtype=bool)
    runs = runs.copy(deep=False)
    for task, rows in runs.groupby("task", sort=False):
        metric = metrics.get(str(task))
        if metric is None:
            continue
        unrecorded = rows.index[rows["metric"].isna()]  # a run that recorded no metric
        if len(unrecorded):
            for column, field in METRIC_COLUMNS.items():
                runs[column] = runs[column].astype(object)
                runs.loc[unrecorded, column] = getattr(metric, field)
            rows = runs.loc[rows.index]
        for column, field in METRIC_COLUMNS.items():
            expected = getattr(metric, field)
            differs = [not _same(value, expected) for value in rows[column]]
            for index, file in zip(rows.index[differs], rows["file"][differs], strict=True):
                if keep[index]:
                    keep[index] = False
                    value = rows.at[index, column]
                    value = value.item() if isinstance(value, np.generic) else value
                    bad[str(file)] = (f"its metric's {field} is {value!r}, "
                                      f"the registered task {task}'s is {expected!r}: not "
                                      "ranked (scoring rules come from the registry)")
    return runs[keep], bad


def _same(recorded: object, expected: object) -> bool:
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        return recorded is None or (isinstance(recorded, float) and math.isnan(recorded))
    if isinstance(expected, bool):
        return flag(recorded) == expected and recorded is not None and not pd.isna(recorded)
    if isinstance(expected, (int, float)):
        try:
            return float(recorded) == float(expected)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
    return recorded == expected


def registered_task_metrics() -> dict[str, Metric]:
    """Task name → metric of every task and held-out variant the installed suites define."""
    from suites import registry

    return {task.name: task.metric for task in [*registry.all_tasks(),
                                                 *registry.variant_tasks()]}
