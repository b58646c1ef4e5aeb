"""The site's pages: each function renders one kind of page from ``suites.site_data``."""

from __future__ import annotations

import functools
import math
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from suites import leaderboard, site_data
from suites.api import BUDGET_NAMES, EVAL_SEED_OFFSET, MAX_CONFIGS, SEEDS_PER_BUDGET
from suites.results import ResultStore
from suites.sitegen import plots
from suites.sitegen.format import Slugs, optimizer_markers, quantity_label

#: The submission that the "Submit" page shows, verbatim (the tests submit it).
EXAMPLE_SUBMISSION = Path(__file__).resolve().parents[2] / "site" / "example_optimizer.py"
#: Plots of quantities evaluated during training, at most, per task page.
MAX_EVAL_PLOTS = 3


@dataclass(frozen=True)
class SuiteInfo:
    """What the suites tell the site (``suites.registry``): task objects by name (for
    descriptions and budgets), suite descriptions, the suite order, plot labels and the
    tasks' places on a scaling axis (``SuiteModule.task_axis``)."""

    tasks: dict[str, Any]
    docs: dict[str, str]
    order: list[str]
    labels: dict[str, str]
    axes: dict[str, tuple[str, float, str]]


@dataclass
class Site:
    """What every page needs: data, names → files, colours and markers, the page renderer."""

    results: site_data.Results
    budget: str | None
    env: jinja2.Environment
    out: Path
    slugs: Slugs
    colours: dict[str, str]
    suites: SuiteInfo
    nav_suites: list[str]
    has_asv: bool
    board: pd.DataFrame  # site_data.leaderboard_frame at the site's budget
    suite_tables: dict[str, pd.DataFrame]  # site_data.suite_tables at the site's budget
    #: Where the results directory is published (files linked there), or None (``raw/``).
    raw_url: str | None = None

    @functools.cached_property
    def markers(self) -> dict[str, str]:
        """Each optimizer's marker (``optimizer_markers`` of the names ``colours`` has)."""
        return optimizer_markers(self.colours)

    @functools.cached_property
    def variants(self) -> tuple[pd.DataFrame, dict[str, float]]:
        """``leaderboard.variant_table`` at the site's budget: the ranking on the held-out
        variants against the public one, and Kendall's tau between them with its interval
        (an empty table without held-out runs)."""
        runs = self.results.runs if self.budget is not None else self.results.runs.iloc[:0]
        return leaderboard.variant_table(runs, self.budget or BUDGET_NAMES[0])

    @functools.cached_property
    def eval_index(self) -> dict[tuple[str, str, str], list[str]]:
        return site_data.eval_file_index(self.results.current, self.budget)

    @functools.cached_property
    def sensitivity(self) -> pd.DataFrame:
        """``leaderboard.sensitivity_points`` at the site's budget."""
        if self.budget is None:
            return leaderboard.sensitivity_points(self.results.runs.iloc[:0])
        return leaderboard.sensitivity_points(self.results.runs, self.budget)

    @functools.cached_property
    def windows(self) -> dict[tuple[str, str], tuple[float, bool]]:
        """(task, optimizer) → (step-size window, found) (``leaderboard.step_size_windows``)."""
        frame = leaderboard.step_size_windows(self.sensitivity)
        return {(r.task, r.optimizer): (r.window, r.found) for r in frame.itertuples()}

    @functools.cached_property
    def self_tuning_board(self) -> pd.DataFrame:
        """The self-tuning track's overall table at the site's budget, with each optimizer's
        rank in the tuned (external) board as ``tuned_rank`` (ties marked, "=2") and
        ``tuned_order`` (the number it sorts by); None where it has no tuned rank."""
        runs = self.results.self_tuning
        if self.budget is None or runs.empty:
            return pd.DataFrame()
        board = leaderboard.overall_table(runs, self.budget)
        tuned = {} if self.board.empty else {
            name: (tied, rank) for name, tied, rank in
            zip(self.board["optimizer"], self.board["tied_rank"], self.board["rank"], strict=True)}
        found = [tuned.get(name, (None, None)) for name in board["optimizer"]]
        return board.assign(tuned_rank=[tied for tied, _ in found],
                            tuned_order=[rank for _, rank in found])

    @functools.cached_property
    def self_tuning_scores(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Task → optimizer → its self-tuning task-table row at the site's budget."""
        runs = self.results.self_tuning
        if self.budget is None or runs.empty:
            return {}
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for row in leaderboard.task_table(runs, self.budget).to_dict("records"):
            found.setdefault(row["task"], {})[row["optimizer"]] = row
        return found

    @functools.cached_property
    def first_files(self) -> dict[str, str]:
        """Task → its first run file (in path order): one pass, not a filter per page."""
        return self.results.runs.groupby("task", sort=False)["file"].first().to_dict()

    def window(self, row: dict[str, Any]) -> dict[str, Any]:
        """``row`` (a task-table row) with its ``window`` and ``window_found``."""
        window, found = self.windows.get((row["task"], row["optimizer"]), (math.nan, False))
        return {**row, "window": window, "window_found": found}

    def eval_files(self, task: str, optimizer: str, config_key: str) -> list[str]:
        """The evaluation run files of a configuration of ``optimizer`` on ``task``, by seed."""
        return self.eval_index.get((task, optimizer, config_key), [])

    def seed_links(self, files: list[str], root: str) -> list[tuple[str, str]]:
        return [(f"seed {self.results.seeds[f]}", self.raw_href(f, root))
                for f in files]

    def task_order(self, tasks: Any) -> list[str]:
        return site_data.task_order(tasks, list(self.suites.tasks))

    def label(self, quantity: str) -> str:
        return quantity_label(quantity, self.suites.labels)

    def optimizer_href(self, name: str, root: str) -> str:
        return f"{root}optimizer/{self.slugs('optimizer', name)}.html"

    def task_href(self, name: str, root: str) -> str:
        return f"{root}task/{self.slugs('task', name)}.html"

    def suite_href(self, name: str, root: str) -> str:
        return f"{root}suite/{self.slugs('suite', name)}.html"

    def raw_href(self, file: str, root: str) -> str:
        if self.raw_url is not None:
            return self.raw_url + urllib.parse.quote(file)
        return f"{root}raw/{file}"

    def render(self, template: str, path: str, **context: Any) -> None:
        root = "../" * path.count("/")
        page = self.env.get_template(template).render(
            root=root, site=self, budget=self.budget, page_path=path,
            run_files=len(self.results.records), **context,
        )
        target = self.out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page, encoding="utf-8")


def index_page(site: Site, table: pd.DataFrame, problems: list[site_data.FileProblem]) -> None:
    runs = site.results.runs
    board = site.board
    suites = [c.removeprefix("suite:") for c in board.columns if c.startswith("suite:")]
    plot = None
    profile = site_data.profile_curves(runs, site.budget) if not table.empty \
        else pd.DataFrame()
    if not profile.empty:
        plot = plots.plot_profile(profile, list(board["optimizer"]), site.colours,
                                  site.markers)
    superseded = leaderboard.superseded_versions(runs) if not runs.empty else pd.DataFrame()
    pairwise = leaderboard.pairwise_matrix(board) if not board.empty else pd.DataFrame()
    site.render(
        "index.html", "index.html", pairwise=[(name, list(row.items()))
                                              for name, row in pairwise.iterrows()],
        rank_groups=leaderboard.rank_groups(board["tied_rank"]) if not board.empty else 0,
        board=board.to_dict("records"), suites=suites, profile_plot=plot,
        suite_rows=site_data.suite_counts(table, site.nav_suites), problems=problems,
        superseded=superseded.to_dict("records"),
        budgets=site_data.budget_counts(runs), tau_max=leaderboard.TAU_MAX,
        eval_runs=site_data.eval_run_count(runs),
        self_tuning=site.self_tuning_board.to_dict("records"),
        self_tuning_runs=site_data.eval_run_count(site.results.self_tuning),
        variants=site.variants[0].to_dict("records"), variant_tau=site.variants[1],
        bootstrap_level=leaderboard.BOOTSTRAP_LEVEL,
    )


def _task_rows(site: Site, table: pd.DataFrame, task: str, root: str) -> list[dict]:
    rows = [site.window(row) for row in table[table["task"] == task].to_dict("records")]
    for row in rows:
        row["files"] = site.seed_links(
            site.eval_files(task, row["optimizer"], row["config_key"]), root)
    return rows


def _metric(site: Site, task: str) -> dict[str, Any]:
    """The task's metric as the runs recorded it (its first run's, in path order)."""
    metric = site.results.records[site.first_files[task]].metric
    return metric.model_dump() if metric is not None else {}


def suite_page(site: Site, table: pd.DataFrame, suite: str) -> None:
    root = "../"
    order = site.task_order(table.loc[table["suite"] == suite, "task"])
    task_rows = site_data.task_leaders(table, order)
    for row in task_rows:
        row["href"], row["metric"] = site.task_href(row["name"], root), _metric(site, row["name"])
    overall = site.suite_tables[suite]
    site.render(
        "suite.html", f"suite/{site.slugs('suite', suite)}.html",
        suite=suite, description=site.suites.docs.get(suite, ""), task_rows=task_rows,
        overall=overall.to_dict("records"),
        ranking=site_data.rank_cells(table, list(overall["optimizer"]), order),
        short_tasks=[t.removeprefix(f"{suite}/") for t in order],
        task_hrefs=[site.task_href(t, root) for t in order],
        plots=_suite_plots(site, table, order),
    )


def _suite_plots(site: Site, table: pd.DataFrame, order: list[str]) -> list[dict]:
    """The score against the suite's scaling axis where its tasks have one (``task_axis``),
    and each evaluation seed's score for every other task."""
    result = []
    axes = {t: site.suites.axes[t] for t in order if t in site.suites.axes}
    by_axis: dict[str, dict[str, tuple[str, float, str]]] = {}
    for task, axis in axes.items():
        by_axis.setdefault(axis[0], {})[task] = axis
    for axis_name, placed in by_axis.items():
        if len({value for _, value, _ in placed.values()}) < 2:
            continue
        label = site.label(_metric(site, next(iter(placed))).get("name", "score"))
        series = site_data.scaling_series(table, site.results.runs, site.budget, placed)
        result.append({
            "title": f"{label[0].upper() + label[1:]} against {axis_name}",
            "caption": "Mean over evaluation seeds of each optimizer's tuned configuration, "
                       "log–log axes. A hollow marker means the runs failed (no score within "
                       "the budget); it sits at the most steps the runs took where the score "
                       "counts steps, else at the worst score plotted.",
            "svg": plots.plot_scaling(series, site.colours, site.markers, xlabel=axis_name,
                                      ylabel=label, salt=f"scaling-{axis_name}-{order[0]}"),
        })
    plotted = {t for placed in by_axis.values()
               if len({v for _, v, _ in placed.values()}) >= 2 for t in placed}
    for task in order:
        if task not in plotted:
            result.append(_seed_plot(site, table, task,
                                     f"{task}: score of each evaluation seed"))
    return result


def _seed_plot(site: Site, table: pd.DataFrame, task: str, title: str) -> dict:
    metric = _metric(site, task)
    points = site_data.seed_scores(table, task, site.results.records, site.eval_index)
    return {
        "title": title,
        "caption": "One marker per evaluation seed of each optimizer's tuned configuration, "
                   "optimizers in rank order; × marks a failed seed.",
        "svg": plots.plot_seed_scores(points, site.colours, site.markers,
                                      ylabel=site.label(metric.get("name", "score")),
                                      higher_is_better=bool(metric.get("higher_is_better")),
                                      salt=f"seeds-{task}"),
    }


def task_page(site: Site, table: pd.DataFrame, task: str) -> None:
    root = "../"
    rows = _task_rows(site, table, task, root)
    metric = _metric(site, task)
    registered = site.suites.tasks.get(task)
    records_by_optimizer = {
        row["optimizer"]: [site.results.records[f]
                           for f in site.eval_files(task, row["optimizer"], row["config_key"])]
        for row in rows
    }
    shown = []
    losses = [v for rs in records_by_optimizer.values() for r in rs
              for v in r.curve.get("loss", []) if v is not None and math.isfinite(v)]
    log = bool(losses) and min(losses) > 0
    # A loss that reaches zero cannot go on a log axis; symlog keeps its spikes readable.
    scale = "log" if log else ("symlog" if losses and max(losses) > 0 else "linear")
    loss_bands = _bands(records_by_optimizer, "step", "loss", log=log)
    if loss_bands:
        shown.append({
            "title": "Training loss",
            "caption": "Median over evaluation seeds (line) and their range (band), for each "
                       "optimizer's tuned configuration. A curve ends where its runs stopped "
                       "(target reached or diverged).",
            "svg": plots.plot_bands(loss_bands, site.colours, site.markers,
                                    ylabel="minibatch loss", scale=scale, salt=f"loss-{task}"),
        })
    name = metric.get("name")
    keys = _eval_keys_to_plot(
        site_data.eval_curve_keys(r for rs in records_by_optimizer.values() for r in rs), name,
        site.suites.labels)
    plotted: set[str] = set()
    for key in keys:
        bands = _bands(records_by_optimizer, "eval_step", f"eval_{key}", log=False)
        values = [v for b in bands.values() for v in b.median if math.isfinite(v)]
        log = bool(values) and min(values) > 0 and max(values) / min(values) > 50
        if log:
            bands = _bands(records_by_optimizer, "eval_step", f"eval_{key}", log=True)
        if not bands:
            continue
        plotted.add(key)
        label = site.label(key)
        shown.append({
            "title": f"{label[0].upper() + label[1:]} during training",
            "caption": "Evaluated periodically; median over evaluation seeds and range.",
            "svg": plots.plot_bands(bands, site.colours, site.markers, ylabel=label,
                                    scale="log" if log else "linear",
                                    salt=f"eval-{key}-{task}"),
        })
    if name not in plotted:  # the metric is known only at the end of the runs
        shown.append(_seed_plot(site, table, task, "Score of each evaluation seed"))
    sensitivity = site_data.sensitivity_series(site.sensitivity, site.results.runs, site.budget,
                                               task)
    if sensitivity:
        label = site.label(name or "score")
        shown.append({
            "title": f"{label[0].upper() + label[1:]} against the step size",
            "caption": "Each optimizer's tuned configuration with its step size multiplied by "
                       "2^k, k = −3 … 3 (1 = the tuned one), mean over the tuning seeds; a "
                       "hollow marker means a seed failed. The step-size window in the table "
                       "is the widest run of multipliers near the best on every seed.",
            "svg": plots.plot_scaling(sensitivity, site.colours, site.markers,
                                      xlabel="step-size multiplier", ylabel=label,
                                      salt=f"sensitivity-{task}"),
        })
    # ``chance`` is optional in the Task protocol (``BaseTask`` has it).
    chance_of = getattr(registered, "chance", None)
    chance = chance_of(site.budget) if chance_of and site.budget is not None else None
    untrained = (site_data.not_above_chance(site.results.current, site.budget, task, chance)
                 if chance is not None else [])
    suite = rows[0]["suite"] if rows else task.split("/", 1)[0]
    site.render(
        "task.html", f"task/{site.slugs('task', task)}.html",
        task=task, suite=suite, metric=metric, rows=rows, plots=shown,
        chance=chance, untrained=untrained, self_tuning=site.self_tuning_scores.get(task, {}),
        description=registered.description if registered is not None else "",
        budgets=registered.budgets if registered is not None else None,
        budget_names=BUDGET_NAMES,
    )


def _eval_keys_to_plot(keys: list[str], metric: str | None, labels: dict[str, str]
                       ) -> list[str]:
    """Of the quantities evaluated during training, those worth a plot: the task's metric,
    accuracies and the quantities the suites label (training loss has its own plot)."""
    def wanted(key: str) -> bool:
        return key == metric or key in labels or (
            "accuracy" in key and not key.startswith("steps"))

    chosen = [k for k in keys if wanted(k) and not k.startswith("steps_to")]
    if metric in chosen:
        chosen = [metric] + [k for k in chosen if k != metric]
    return chosen[:MAX_EVAL_PLOTS]


def _bands(records_by_optimizer: dict[str, list[dict]], x: str, y: str, *, log: bool
           ) -> dict[str, site_data.Band]:
    bands = {}
    for name, records in records_by_optimizer.items():
        curves = [(r.curve.get(x, []), r.curve.get(y, []))
                  for r in records]
        band = site_data.curve_band(curves, log=log)
        if band is not None:
            bands[name] = band
    return bands


def optimizer_page(site: Site, table: pd.DataFrame, name: str) -> None:
    from suites import registry

    root = "../"
    runs = site.results.runs
    current = site.results.current
    mine = current[current["optimizer"] == name].sort_values("file")
    first = site.results.records[mine["file"].iloc[0]]
    builtin = registry.builtin_optimizer_paths().get(name)
    source_hash = first.spec.optimizer.source_hash
    kept = ResultStore(site.results.root).source_path(name, source_hash)
    source = site_data.optimizer_source(
        name, source_hash, first.spec.optimizer.path or "",
        [kept] + ([builtin] if builtin is not None else []))
    source_href = None
    # The file's name only: the recorded path is local to the machine that made the runs.
    file_name = Path(source.recorded_path).name
    if not file_name.strip("."):  # "", "." or "..": no name to show, nor to write under
        file_name = "(unknown)"
    if source.text is not None:
        target = f"optimizers/{site.slugs('optimizer', name)}/{file_name}"
        path = site.out / "raw" / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source.text, encoding="utf-8")
        source_href = f"{root}raw/{target}"  # written here, with or without ``raw_url``

    board = site.board
    overall = board[board["optimizer"] == name].to_dict("records")
    mine_table = table[table["optimizer"] == name]
    counts = site_data.optimizers_per_task(table)
    chosen_rows = []
    for task in site.task_order(mine_table["task"]):
        row = site.window(mine_table[mine_table["task"] == task].iloc[0].to_dict())
        row["of"] = counts[task]
        row["href"] = site.task_href(task, root)
        chosen_rows.append(row)
    sweep = site_data.sweep_frame(runs, site.budget, name)
    chosen = {r["task"]: r["config_key"] for r in chosen_rows}
    sweep_groups = []
    sweep_tasks = site.task_order(sweep["task"]) if len(sweep) else []
    for task in sweep_tasks:
        rows = sweep[sweep["task"] == task].to_dict("records")
        for row in rows:
            row["chosen"] = row["config_key"] == chosen.get(task)
            row["links"] = site.seed_links(row["files"], root)
        sweep_groups.append({"task": task, "href": site.task_href(task, root), "rows": rows,
                             "metric": _metric(site, task)})
    sweep_plot = plots.plot_sweep(sweep, sweep_tasks, chosen, site.colours[name],
                                  salt=f"sweep-{site.slugs('optimizer', name)}",
                                  marker=site.markers[name]) \
        if len(sweep) else None
    eval_links = []
    for row in chosen_rows:
        for f in site.eval_files(row["task"], name, row["config_key"]):
            eval_links.append((row["task"], site.results.seeds[f],
                               site.raw_href(f, root)))
    site.render(
        "optimizer.html", f"optimizer/{site.slugs('optimizer', name)}.html",
        name=name, colour=site.colours[name], source=source, file_name=file_name,
        source_href=source_href, overall=overall[0] if overall else None,
        suites=[c.removeprefix("suite:") for c in board.columns if c.startswith("suite:")],
        packages=sorted(first.spec.optimizer.packages.items()),
        chosen_rows=chosen_rows, sweep_groups=sweep_groups, sweep_plot=sweep_plot,
        configs_run=site_data.configs_run(sweep), eval_links=eval_links,
    )


def submit_page(site: Site) -> None:
    budgets = [{"name": task.name, "steps": [task.budgets.steps(b) for b in BUDGET_NAMES]}
               for task in site.suites.tasks.values()]
    site.render(
        "submit.html", "submit.html",
        example=EXAMPLE_SUBMISSION.read_text(encoding="utf-8"),
        example_name=EXAMPLE_SUBMISSION.name, budgets=budgets, budget_names=BUDGET_NAMES,
        seeds=SEEDS_PER_BUDGET, eval_seed_offset=EVAL_SEED_OFFSET, max_configs=MAX_CONFIGS,
        tau_max=leaderboard.TAU_MAX,
    )
