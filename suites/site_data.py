"""The site's page data: pandas frames and small records built from a results directory.

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
import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from suites import leaderboard
from suites.api import BUDGET_NAMES
from suites.registry import SUITE_NAMES
from suites.results import CorruptRecord, from_record, read_record

#: Names of the fused implementations on the kernels page.
FUSED_IMPLS = ("triton",)


@dataclass(frozen=True)
class FileProblem:
    """A results file that the site skipped, and why."""

    path: str  # relative to the results directory, with forward slashes
    reason: str


@dataclass
class Results:
    """The readable runs of a results directory, their records, and the unreadable files.

    ``runs`` has the columns of ``suites.leaderboard.runs_frame`` plus ``file``, the
    run file's path relative to the results directory (the key of ``records``).
    """

    root: Path
    runs: pd.DataFrame
    records: dict[str, dict[str, Any]]
    problems: list[FileProblem] = field(default_factory=list)

    @functools.cached_property
    def current(self) -> pd.DataFrame:
        """The runs of each optimizer's current version (``leaderboard.latest_versions``)."""
        return leaderboard.latest_versions(self.runs)


def load_results(root: str | Path) -> Results:
    """Read every run file under ``root/runs``; invalid ones become ``FileProblem``s."""
    root = Path(root)
    records: dict[str, dict[str, Any]] = {}
    problems: list[FileProblem] = []
    runs_dir = root / "runs"
    paths = sorted(runs_dir.rglob("*.json")) if runs_dir.is_dir() else []
    for path in paths:
        relative = path.relative_to(root).as_posix()
        try:
            record = read_record(path)
            from_record(record)  # every field the schema promises is there and typed
        except CorruptRecord as err:
            problems.append(FileProblem(relative, str(err).removeprefix(f"{path}: ")))
            continue
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            reason = f"malformed record ({type(err).__name__}: {err})"
            problems.append(FileProblem(relative, reason))
            continue
        records[relative] = record
    runs = leaderboard.runs_frame(records.values())
    runs["file"] = pd.Series(list(records), index=runs.index, dtype=object)
    return Results(root, runs, records, problems)


def site_budget(runs: pd.DataFrame) -> str | None:
    """The largest budget with evaluation runs: the one the site reports."""
    present = set(runs.loc[runs["phase"] == "eval", "budget"])
    return next((b for b in reversed(BUDGET_NAMES) if b in present), None)


def budget_counts(runs: pd.DataFrame) -> dict[str, int]:
    """Run files per budget, in the budgets' order."""
    counts = runs["budget"].value_counts()
    return {b: int(counts[b]) for b in BUDGET_NAMES if b in counts}


def natural_key(text: str) -> list[Any]:
    """Sort key that orders "depth-8" before "depth-16"."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def suite_order(suites: Iterable[str]) -> list[str]:
    """Suites in the canonical order, unknown ones after them alphabetically."""
    suites = set(suites)
    known = [s for s in SUITE_NAMES if s in suites]
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


def suite_tables(runs: pd.DataFrame, budget: str) -> dict[str, pd.DataFrame]:
    """``leaderboard.overall_table`` of each suite with evaluation runs, in suite order."""
    current = leaderboard.latest_versions(runs)
    evaluated = current[(current["budget"] == budget) & (current["phase"] == "eval")]
    return {s: leaderboard.overall_table(runs, budget, s)
            for s in suite_order(evaluated["suite"])}


def leaderboard_frame(runs: pd.DataFrame, budget: str,
                      per_suite: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """``leaderboard.overall_table`` plus per-suite profile scores, run counts, last run.

    Per-suite scores are in columns ``suite:<name>`` (from ``per_suite``, by default
    ``suite_tables``); ``runs`` counts the files of the optimizer's current version at
    ``budget``; ``last_updated`` is its newest run's time.
    """
    overall = leaderboard.overall_table(runs, budget)
    current = leaderboard.latest_versions(runs)
    current = current[current["budget"] == budget]
    per_suite = suite_tables(runs, budget) if per_suite is None else per_suite
    for suite, table in per_suite.items():
        scores = table.set_index("optimizer")["profile_score"]
        overall[f"suite:{suite}"] = overall["optimizer"].map(scores)
    by_optimizer = current.groupby("optimizer")
    overall["runs"] = overall["optimizer"].map(by_optimizer.size()).fillna(0).astype(int)
    overall["last_updated"] = overall["optimizer"].map(by_optimizer["created"].max())
    return overall


def profile_curves(runs: pd.DataFrame, budget: str) -> pd.DataFrame:
    """ρ(τ) for τ from 1 to ``leaderboard.TAU_MAX``: index τ, one column per optimizer.

    The τ values are where some ρ steps (the ratios themselves) and the two ends, so a
    step plot of the frame is the exact profile.
    """
    table = leaderboard.task_table(runs, budget)
    if table.empty:
        return pd.DataFrame()
    ratios = leaderboard.performance_ratios(leaderboard.common_tasks(table))
    values = ratios.to_numpy(dtype=float)
    inside = values[(values >= 1.0) & (values <= leaderboard.TAU_MAX)]
    taus = np.unique(np.concatenate([[1.0, leaderboard.TAU_MAX], inside]))
    share = (values[:, :, None] <= taus[None, None, :]).mean(axis=0)
    return pd.DataFrame(share.T, index=pd.Index(taus, name="tau"), columns=ratios.columns)


def tasks_of(runs: pd.DataFrame, budget: str) -> dict[str, list[str]]:
    """Suite → tasks with runs at ``budget``, unordered within a suite."""
    at = runs[runs["budget"] == budget]
    return {s: sorted(set(g["task"])) for s, g in at.groupby("suite")}


def ranking_matrix(table: pd.DataFrame, suite: str) -> pd.DataFrame:
    """Optimizers × a suite's tasks: the rank on each task (from ``task_table``)."""
    rows = table[table["suite"] == suite]
    if rows.empty:
        return pd.DataFrame()
    return rows.pivot(index="optimizer", columns="task", values="rank")


# --------------------------------------------------------------------------- sweeps


def sweep_frame(runs: pd.DataFrame, budget: str, optimizer: str) -> pd.DataFrame:
    """Every tuning configuration of ``optimizer`` on every task, with its outcome.

    Columns: task, config, seeds, succeeded (seeds with status ok and a finite score),
    statuses ("ok 2, diverged 1"), score_mean, score_std (over successful seeds), ratio
    (oriented score over the best configuration's; ``inf`` when a seed failed), near_best
    (the tuning-robustness criterion of ``suites.leaderboard``), files (run file paths).
    A configuration with a failed seed scores ``inf`` (``-inf`` when higher is better); a
    run with status ok but no finite score (a target never reached) counts as "no score".
    """
    columns = ["task", "config", "seeds", "succeeded", "statuses", "score_mean", "score_std",
               "ratio", "near_best", "higher_is_better", "files"]
    current = leaderboard.latest_versions(runs)
    tune = current[(current["budget"] == budget) & (current["phase"] == "tune")
                   & (current["optimizer"] == optimizer)]
    if tune.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for (task, config), group in tune.groupby(["task", "config"], sort=True):
        scores = group["score"].astype(float)
        success = (group["status"] == "ok") & np.isfinite(scores)
        higher = bool(group["higher_is_better"].iloc[0])
        good = scores[success]
        outcomes = group["status"].where(success | (group["status"] != "ok"), "no score")
        statuses = outcomes.value_counts()
        failed = math.inf if not higher else -math.inf
        rows.append({
            "task": task,
            "config": config,
            "seeds": len(group),
            "succeeded": int(success.sum()),
            "statuses": ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())),
            "score_mean": float(good.mean()) if success.all() else failed,
            "score_std": float(good.std(ddof=1)) if success.all() and len(good) > 1 else 0.0,
            "higher_is_better": higher,
            "tolerance": float(group["tolerance"].iloc[0]),
            "files": sorted(group["file"]),
        })
    frame = pd.DataFrame(rows)
    ratios, near = pd.Series(math.inf, index=frame.index), pd.Series(False, index=frame.index)
    for _, group in frame.groupby("task", sort=False):
        higher = bool(group["higher_is_better"].iloc[0])
        finite = group["score_mean"][np.isfinite(group["score_mean"])]
        if finite.empty:
            continue
        best = finite.max() if higher else finite.min()
        for index, score, tolerance in zip(group.index, group["score_mean"], group["tolerance"],
                                           strict=True):
            if math.isfinite(score):
                ratios[index] = score_ratio(score, best, higher)
                near[index] = abs(score - best) <= tolerance * abs(best)
    frame["ratio"], frame["near_best"] = ratios, near
    return frame[columns]


def score_ratio(score: float, best: float, higher_is_better: bool) -> float:
    """How many times worse than ``best`` a score is (≥ 1), as in the performance profile."""
    numerator, denominator = (best, score) if higher_is_better else (score, best)
    if denominator > 0:
        return max(1.0, numerator / denominator)
    return 1.0 if score == best else math.inf


def eval_file_index(current: pd.DataFrame, budget: str) -> dict[tuple[str, str, str], list[str]]:
    """(task, optimizer, config) → its evaluation run files at ``budget``, by seed.

    ``current``: the runs of the optimizers' current versions (``leaderboard.latest_versions``).
    """
    chosen = current[(current["budget"] == budget) & (current["phase"] == "eval")]
    return {key: list(group.sort_values("seed")["file"])
            for key, group in chosen.groupby(["task", "optimizer", "config"], sort=True)}


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
        curve = record.get("curve") or {}
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


def file_hash(data: bytes) -> str:
    """``suites.submission.source_hash`` of a file's bytes."""
    return hashlib.sha256(data).hexdigest()[:12]


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


# --------------------------------------------------------------------------- kernels

KERNEL_COLUMNS = [
    "file", "machine", "device", "run_date", "commit", "kernel", "size", "impl", "time_s",
    "rounds", "bytes", "gbps", "peak_gbps", "peak_fraction", "reference", "speedup",
]


def kernel_frame(kernels_dir: str | Path) -> tuple[pd.DataFrame, list[FileProblem]]:
    """One row per benchmark in ``kernels_dir/*.json`` (pytest-benchmark ``--benchmark-json``).

    ``time_s`` is the median time; ``gbps`` the achieved bandwidth (recorded, else
    ``bytes / time``); ``peak_fraction`` where the peak is known; ``speedup`` the
    reference implementation's time over this one's, for the same kernel, size, machine
    and file. ``file`` is relative to the results directory (``kernels/<name>.json``).
    """
    kernels_dir = Path(kernels_dir)
    rows: list[dict[str, Any]] = []
    problems: list[FileProblem] = []
    paths = sorted(kernels_dir.glob("*.json")) if kernels_dir.is_dir() else []
    for path in paths:
        relative = f"{kernels_dir.name}/{path.name}"
        try:
            document = json.loads(path.read_text())
            benchmarks = document["benchmarks"]
            if not isinstance(benchmarks, list):
                raise TypeError("'benchmarks' is not a list")
            machine = _machine_name(document.get("machine_info") or {})
            commit = (document.get("commit_info") or {}).get("id") or ""
            for bench in benchmarks:
                rows.append(_kernel_row(bench, relative, machine, str(commit)[:12],
                                        str(document.get("datetime") or "")[:10]))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            problems.append(FileProblem(relative, f"not readable as JSON ({err})"))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            problems.append(FileProblem(
                relative, f"not pytest-benchmark output ({type(err).__name__}: {err})"))
    frame = pd.DataFrame(rows, columns=KERNEL_COLUMNS)
    if frame.empty:
        return frame, problems
    keys = ["file", "device", "kernel", "size"]
    ref_time = frame[frame["impl"] == frame["reference"]].set_index(keys + ["impl"])["time_s"]
    ref_time = ref_time[~ref_time.index.duplicated()]
    lookup = list(zip(*(frame[k] for k in keys), frame["reference"], strict=True))
    reference = pd.Series([ref_time.get(k, math.nan) for k in lookup], index=frame.index)
    frame["speedup"] = reference / frame["time_s"]
    frame = frame.sort_values(
        ["file", "device", "kernel", "size", "impl"],
        key=lambda column: column.map(lambda v: tuple(natural_key(v)))
        if column.name == "size" else column,
    )
    return frame.reset_index(drop=True), problems


def kernel_tables(kernels: pd.DataFrame) -> list[dict[str, Any]]:
    """The kernels page's tables: one per (benchmark file, device), rows by kernel and size.

    Each table: ``file``, ``device``, ``machine``, ``run_date``, ``commit`` and ``rows``
    (dicts with kernel, size, impl, time_s, gbps, peak_fraction, speedup, reference,
    fused, is_reference). Plain data, no plotting: ``lsb show --kernels`` prints them.
    """
    tables = []
    for (file, device), group in kernels.groupby(["file", "device"], sort=False):
        rows = group.to_dict("records")
        for row in rows:
            row["fused"] = row["impl"] in FUSED_IMPLS
            row["is_reference"] = row["impl"] == row["reference"]
        first = rows[0]
        tables.append({"file": file, "device": device, "machine": first["machine"],
                       "run_date": first["run_date"], "commit": first["commit"], "rows": rows})
    return tables


def _machine_name(info: dict[str, Any]) -> str:
    cpu = info.get("cpu") or {}
    brand = cpu.get("brand_raw") or info.get("processor") or info.get("machine") or ""
    node = info.get("node") or ""
    return " · ".join(part for part in (node, brand) if part) or "unknown machine"


def _kernel_row(bench: dict[str, Any], file: str, machine: str, commit: str,
                date: str) -> dict[str, Any]:
    extra = bench.get("extra_info") or {}
    stats = bench["stats"]
    params = bench.get("params") or {}
    name = str(bench.get("name", ""))
    kernel = str(extra.get("kernel") or bench.get("group") or name.split("[", 1)[0])
    impl = str(extra.get("impl") or params.get("impl") or params.get("backend") or name)
    size = extra.get("size")
    size = "×".join(str(s) for s in size) if isinstance(size, list) else str(
        extra.get("case") or params.get("size") or "")
    seconds = float(stats["median"])
    moved = extra.get("bytes")
    gbps = extra.get("gbps")
    if gbps is None and moved and seconds > 0:
        gbps = float(moved) / seconds / 1e9
    peak = extra.get("peak_gbps")
    fraction = extra.get("peak_fraction")
    if fraction is None and gbps is not None and peak:
        fraction = float(gbps) / float(peak)
    return {
        "file": file,
        "machine": machine,
        "device": str(extra.get("device") or machine),
        "run_date": date,
        "commit": commit,
        "kernel": kernel,
        "size": size,
        "impl": impl,
        "time_s": seconds,
        "rounds": int(stats.get("rounds") or 0),
        "bytes": int(moved) if moved else None,
        "gbps": _float_or_nan(gbps),
        "peak_gbps": _float_or_nan(peak),
        "peak_fraction": _float_or_nan(fraction),
        # The implementation this kernel's speedups are quoted against (bench/cases.py).
        "reference": str(extra.get("reference") or ""),
        "speedup": math.nan,
    }


def _float_or_nan(value: Any) -> float:
    return math.nan if value is None else float(value)
