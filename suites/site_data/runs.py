"""The site's run data: the runs of a results directory as frames, tables and curves.

Everything the site shows as a number comes from here, and everything here comes from
the files of a results directory: ``runs/**.json`` (one run each, ``suites.results``)
and ``kernels/*.json`` (pytest-benchmark output). A file that fails validation becomes
a ``FileProblem`` instead of an error. Task descriptions and the source of an optimizer
are text, read from the code (the registry; the submission file when its hash still
matches the runs) and never executed.
"""

from __future__ import annotations

import ast
import functools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from suites import leaderboard, selection
from suites.api import BUDGET_NAMES
from suites.record import RunResult
from suites.results import ResultStore, file_hash, read_run
from suites.site_data.common import FileProblem, natural_key


@dataclass
class Results:
    """The readable runs of a results directory, their records, and the unreadable files.

    ``runs`` has the columns of ``suites.leaderboard.runs_frame`` plus ``file``, the
    run file's path relative to the results directory (the key of ``records``).
    """

    root: Path
    runs: pd.DataFrame
    records: Mapping[str, RunResult]
    problems: list[FileProblem] = field(default_factory=list)
    #: The runs of the self-tuning track (``runs`` holds the external-tuning track's).
    self_tuning: pd.DataFrame = field(default_factory=pd.DataFrame)

    @functools.cached_property
    def seeds(self) -> dict[str, int]:
        """The seed of each run of ``runs``, by file (from the table: no file is read)."""
        return {file: int(seed) for file, seed in zip(self.runs["file"], self.runs["seed"],
                                                      strict=True)}

    @functools.cached_property
    def current(self) -> pd.DataFrame:
        """The runs of each optimizer's current version (``leaderboard.latest_versions``)."""
        return leaderboard.latest_versions(self.runs)


class RunRecords(Mapping[str, RunResult]):
    """The valid runs of a results directory by file (relative to it), each read from its
    file when first asked for: the runs table (``ResultStore.table``) holds what most pages
    need, and only the runs whose curves or metric a page shows are parsed again."""

    def __init__(self, root: Path, files: Iterable[str]):
        self._root = root
        self._files = list(files)
        self._known = set(self._files)
        self._read: dict[str, RunResult] = {}

    def __getitem__(self, file: str) -> RunResult:
        if file not in self._known:
            raise KeyError(file)
        if file not in self._read:
            self._read[file] = read_run(self._root / file).result
        return self._read[file]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)


def load_results(root: str | Path) -> Results:
    """Read every run file under ``root/runs``; invalid ones become ``FileProblem``s.

    Symbolic links and files over ``suites.results.MAX_FILE_BYTES`` are problems too
    (never followed, not read, not copied into the site)."""
    root = Path(root)
    table, skipped = ResultStore(root).table()
    records = RunRecords(root, table["file"])
    problems = [FileProblem(s.path.relative_to(root).as_posix(), s.reason, copied=not s.unread)
                for s in skipped]
    table, disagreeing = selection.registered_metrics(table)
    problems += [FileProblem(file, reason, copied=True) for file, reason in disagreeing.items()]
    # The site ranks the external-tuning track; the self-tuning one has a table of its own.
    runs = leaderboard.of_track(table, "external")
    return Results(root, runs, records, problems,
                   self_tuning=leaderboard.of_track(table, "self-tuning"))


def site_budget(runs: pd.DataFrame) -> str | None:
    """The largest budget with evaluation runs: the one the site reports."""
    present = set(runs.loc[runs["phase"] == "eval", "budget"])
    return next((b for b in reversed(BUDGET_NAMES) if b in present), None)


def budget_counts(runs: pd.DataFrame) -> dict[str, int]:
    """Run files per budget, in the budgets' order."""
    counts = runs["budget"].value_counts()
    return {b: int(counts[b]) for b in BUDGET_NAMES if b in counts}


def suite_order(suites: Iterable[str], registry_order: Sequence[str] = ()) -> list[str]:
    """Suites in the registry's order, unknown ones after them alphabetically."""
    suites = set(suites)
    known = [s for s in registry_order if s in suites]
    return known + sorted(suites - set(known))


def task_order(tasks: Iterable[str], registry_order: Sequence[str] = ()) -> list[str]:
    """Tasks in the registry's order, unknown ones after them in natural order."""
    tasks = set(tasks)
    position = {name: i for i, name in enumerate(registry_order)}
    return sorted(tasks, key=lambda t: (position.get(t, len(position)), natural_key(t)))


def format_config(config: str) -> str:
    """A configuration's canonical JSON as ``lr=0.01, eps=1e-08``."""
    values = json.loads(config)
    if not isinstance(values, dict) or not values:
        return "(no hyperparameters)"
    return ", ".join(f"{k}={_format_value(v)}" for k, v in values.items())


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_format_value(v) for v in value) + ")"
    return str(value)


# --------------------------------------------------------------------------- leaderboard


def suite_tables(runs: pd.DataFrame, budget: str,
                 registry_order: Sequence[str] = ()) -> dict[str, pd.DataFrame]:
    """``leaderboard.overall_table`` of each suite with evaluation runs, in suite order."""
    current = leaderboard.latest_versions(runs)
    evaluated = current[(current["budget"] == budget) & (current["phase"] == "eval")]
    return {s: leaderboard.overall_table(runs, budget, s)
            for s in suite_order(evaluated["suite"], registry_order)}


def leaderboard_frame(runs: pd.DataFrame, budget: str,
                      per_suite: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """``leaderboard.overall_table`` plus per-suite profile scores, run counts, last run.

    Per-suite scores are in columns ``suite:<name>`` (from ``per_suite``, by default
    ``suite_tables``); ``runs`` counts the files of the optimizer's current version at
    ``budget``; ``last_updated`` is its newest run's time.
    """
    overall = leaderboard.overall_table(runs, budget)
    pairwise = overall.attrs.get("pairwise")
    current = leaderboard.latest_versions(runs)
    current = current[current["budget"] == budget]
    per_suite = suite_tables(runs, budget) if per_suite is None else per_suite
    for suite, table in per_suite.items():
        scores = table.set_index("optimizer")["profile_score"]
        overall[f"suite:{suite}"] = overall["optimizer"].map(scores)
    by_optimizer = current.groupby("optimizer")
    overall["runs"] = overall["optimizer"].map(by_optimizer.size()).fillna(0).astype(int)
    overall["last_updated"] = overall["optimizer"].map(by_optimizer["created"].max())
    overall.attrs["pairwise"] = pairwise  # the pairwise outcomes (leaderboard.pairwise_matrix)
    return overall


def profile_curves(runs: pd.DataFrame, budget: str) -> pd.DataFrame:
    """ρ(τ) for τ from 1 to ``leaderboard.TAU_MAX``: index τ, one column per optimizer;
    empty when no task was run by every optimizer.

    The τ values are where some ρ steps (the ratios themselves) and the two ends, so a
    step plot of the frame is the exact profile.
    """
    table = leaderboard.task_table(runs, budget)
    ratios = leaderboard.performance_ratios(leaderboard.common_tasks(table))
    if ratios.empty:  # no runs, or no task that every optimizer ran: no profile
        return pd.DataFrame()
    values = ratios.to_numpy(dtype=float)
    inside = values[(values >= 1.0) & (values <= leaderboard.TAU_MAX)]
    taus = np.unique(np.concatenate([[1.0, leaderboard.TAU_MAX], inside]))
    share = (values[:, :, None] <= taus[None, None, :]).mean(axis=0)
    return pd.DataFrame(share.T, index=pd.Index(taus, name="tau"), columns=ratios.columns)


# --------------------------------------------------------------------------- sweeps


def sweep_frame(runs: pd.DataFrame, budget: str, optimizer: str) -> pd.DataFrame:
    """Every tuning configuration of ``optimizer`` on every task, with its outcome.

    Columns: task, config_key, seeds, succeeded (seeds with status ok and a finite
    score), statuses ("ok 2, diverged 1"), score_mean, score_std (over successful seeds),
    ratio (``Metric.ratio`` to the best configuration's score; ``inf`` when a seed
    failed), near_best (``Metric.near_best``, the "own grid near best" criterion of
    ``suites.leaderboard``), files (run file paths). A configuration with a failed seed
    scores ``Metric.failed_score``; a run with status ok but no finite score (a target
    never reached) counts as "no score".
    """
    columns = ["task", "config_key", "seeds", "succeeded", "statuses", "score_mean",
               "score_std", "ratio", "near_best", "higher_is_better", "files"]
    current = leaderboard.latest_versions(runs)
    tune = current[(current["budget"] == budget) & (current["phase"] == "tune")
                   & (current["optimizer"] == optimizer)]
    if tune.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for (task, config), group in tune.groupby(["task", "config_key"], sort=True):
        metric = leaderboard.metric_of(group)
        scores = group["score"].astype(float)
        success = (group["status"] == "ok") & np.isfinite(scores)
        good = scores[success]
        outcomes = group["status"].where(success | (group["status"] != "ok"), "no score")
        statuses = outcomes.value_counts()
        rows.append({
            "task": task,
            "config_key": config,
            "seeds": len(group),
            "succeeded": int(success.sum()),
            "statuses": ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())),
            "score_mean": float(good.mean()) if success.all() else metric.failed_score,
            "score_std": float(good.std(ddof=1)) if success.all() and len(good) > 1 else 0.0,
            "higher_is_better": metric.higher_is_better,
            "metric": metric,
            "files": sorted(group["file"]),
        })
    frame = pd.DataFrame(rows)
    ratios, near = [], []
    best = {task: group["metric"].iloc[0].best(group["score_mean"])
            for task, group in frame.groupby("task", sort=False)}
    for task, score, metric in zip(frame["task"], frame["score_mean"], frame["metric"],
                                   strict=True):
        ratios.append(metric.ratio(score, best[task]))
        near.append(metric.near_best(score, best[task]))
    frame["ratio"], frame["near_best"] = ratios, near
    return frame[columns]


def eval_file_index(current: pd.DataFrame, budget: str) -> dict[tuple[str, str, str], list[str]]:
    """(task, optimizer, config) → its evaluation run files at ``budget``, by seed.

    ``current``: the runs of the optimizers' current versions (``leaderboard.latest_versions``).
    """
    chosen = current[(current["budget"] == budget) & (current["phase"] == "eval")]
    return {key: list(group.sort_values("seed")["file"])
            for key, group in chosen.groupby(["task", "optimizer", "config_key"], sort=True)}


# --------------------------------------------------------------------------- curves


@dataclass(frozen=True)
class Band:
    """A median curve over seeds with its min–max band, on a common step grid."""

    steps: np.ndarray
    median: np.ndarray
    low: np.ndarray
    high: np.ndarray
    seeds: int


def curve_band(curves: Sequence[tuple[Sequence[float], Sequence[float]]], *, log: bool,
               points: int = 400) -> Band | None:
    """Median and min–max over runs of (steps, values) curves; ``None`` without data.

    Non-finite values are dropped; each run counts from its first to its last step
    (a run that stopped early, at a target or on divergence, leaves the band there).
    With ``log``, non-positive values are dropped and runs are interpolated in log space.
    """
    cleaned = []
    for steps, values in curves:
        x = np.asarray(steps, dtype=float)
        y = np.asarray(values, dtype=float)
        n = min(len(x), len(y))
        x, y = x[:n], y[:n]
        keep = np.isfinite(x) & np.isfinite(y) & ((y > 0) if log else True)
        x, y = x[keep], y[keep]
        if len(x):
            order = np.argsort(x, kind="stable")
            cleaned.append((x[order], np.log(y[order]) if log else y[order]))
    if not cleaned:
        return None
    grid = np.unique(np.concatenate([x for x, _ in cleaned]))
    if len(grid) > points:
        grid = np.unique(grid[np.linspace(0, len(grid) - 1, points).round().astype(int)])
    stack = np.full((len(cleaned), len(grid)), np.nan)
    for row, (x, y) in enumerate(cleaned):
        inside = (grid >= x[0]) & (grid <= x[-1])
        stack[row, inside] = np.interp(grid[inside], x, y)
    present = np.isfinite(stack).any(axis=0)
    grid, stack = grid[present], stack[:, present]
    median = np.nanmedian(stack, axis=0)
    low, high = np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)
    if log:
        median, low, high = np.exp(median), np.exp(low), np.exp(high)
    return Band(grid, median, low, high, len(cleaned))


def eval_curve_keys(records: Iterable[dict[str, Any]]) -> list[str]:
    """The evaluated quantities (``eval_<name>`` curves) with at least two points in a run."""
    keys: set[str] = set()
    for record in records:
        curve = record.curve
        for key, values in curve.items():
            if key.startswith("eval_") and key != "eval_step" and len(values) >= 2:
                keys.add(key.removeprefix("eval_"))
    return sorted(keys)


# --------------------------------------------------------------------------- optimizers


@dataclass(frozen=True)
class OptimizerSource:
    """What the site shows of an optimizer's code.

    ``state``: ``"current"`` (a file with the runs' source hash was found: ``text``,
    ``description`` and ``search_space`` come from it), ``"changed"`` (the file exists
    but its hash differs from the runs') or ``"missing"``.
    """

    name: str
    source_hash: str
    recorded_path: str
    state: str
    text: str | None = None
    description: str = ""
    search_space: list[tuple[str, str]] = field(default_factory=list)


def optimizer_source(name: str, source_hash: str, recorded_path: str,
                     candidates: Sequence[Path] = ()) -> OptimizerSource:
    """Find the file whose hash is ``source_hash`` (the recorded path, then ``candidates``)."""
    state = "missing"
    for path in [Path(recorded_path), *candidates]:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if file_hash(data) != source_hash:
            state = "changed"
            continue
        text = data.decode("utf-8", errors="replace")
        description, space = _read_source(text)
        return OptimizerSource(name, source_hash, recorded_path, "current", text,
                               description, space)
    return OptimizerSource(name, source_hash, recorded_path, state)


def _read_source(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The module docstring and the ``search_space`` entries, read without running the file."""
    try:
        module = ast.parse(text)
    except SyntaxError:
        return "", []
    description = ast.get_docstring(module) or ""
    space: list[tuple[str, str]] = []
    for node in module.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "search_space" for t in node.targets
        ) and isinstance(node.value, ast.Dict):
            space = [
                (_literal_text(k, text), _literal_text(v, text))
                for k, v in zip(node.value.keys, node.value.values, strict=True)
                if k is not None
            ]
    return description, space


def _literal_text(node: ast.AST, text: str) -> str:
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return ast.get_source_segment(text, node) or ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_format_value(v)}" for k, v in value.items()) + "}"
    return _format_value(value)
