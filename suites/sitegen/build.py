"""``build_site(results_dir, out_dir)``: the whole static site, built in one go.

Pages are rendered with jinja2 (autoescaped: optimizer names and docstrings are
untrusted) from ``site/templates``; the data come from ``suites.site_data``, i.e. from the
files of the results directory only; suites give their plot labels (``PLOT_LABELS``).

The build is reproducible: the same results give byte-identical files (no build time
stamps, fixed SVG ids and metadata, sorted iteration everywhere). Links are relative, so
the site opens from ``file://`` and can be published as it is; the run files it links
to are copied into it. It is written to a temporary directory next to ``out_dir`` and
swapped into place at the end, so a failed build leaves the previous site untouched;
an ``asv/`` directory in ``out_dir`` (the asv dashboard, published separately) is kept.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path

import jinja2
import pandas as pd

from suites import registry, site_data
from suites.sitegen import pages
from suites.sitegen.format import (
    Slugs,
    docstring_markup,
    fmt_fixed,
    fmt_percent,
    fmt_score,
    fmt_seconds,
    fmt_times,
    optimizer_colours,
    paragraphs,
    quantity_label,
    sort_key,
)
from suites.sitegen.serve import DEFAULT_OUT

log = logging.getLogger(__name__)

SITE_DIR = Path(__file__).resolve().parents[2] / "site"
TEMPLATES_DIR = SITE_DIR / "templates"
STATIC_DIR = SITE_DIR / "static"
#: Kept across rebuilds: ``asv publish`` writes the kernels' history dashboard here.
ASV_DIR = "asv"


def _environment(labels: dict[str, str]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        score=fmt_score, fixed=fmt_fixed, percent=fmt_percent, times=fmt_times,
        seconds=fmt_seconds, sortkey=sort_key, config=site_data.format_config,
        paragraphs=paragraphs, docmarkup=docstring_markup,
        quantity=functools.partial(quantity_label, labels=labels),
    )
    env.tests["finite_number"] = lambda v: v is not None and math.isfinite(float(v))
    return env


def _registry() -> pages.SuiteInfo:
    """What the suites tell the site: tasks, descriptions, order, labels, scaling axes.

    Empty when the suites cannot load (the site of a results directory still builds).
    """
    try:
        tasks = {t.name: t for t in registry.all_tasks()}
        suites = registry.available_suites()
        docs = {suite: registry.suite_module(suite).__doc__ or "" for suite in suites
                if suite in registry.discovered_suites()}
        labels = registry.plot_labels()
    except (ImportError, ValueError, KeyError) as err:
        log.warning("task descriptions unavailable: %s", err)
        return pages.SuiteInfo({}, {}, [], {}, {})
    axes = {name: axis for name in tasks if (axis := registry.task_axis(name)) is not None}
    return pages.SuiteInfo(tasks, docs, suites, labels, axes)


def build_site(results_dir: str | Path, out_dir: str | Path = DEFAULT_OUT) -> Path:
    """Render the site for ``results_dir`` into ``out_dir``; returns ``out_dir/index.html``."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _build_into(results_dir, staging, has_asv=(out_dir / ASV_DIR).is_dir())
        _swap_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir / "index.html"


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by ``staging``, carrying ``out_dir/asv`` over."""
    asv = out_dir / ASV_DIR
    if asv.is_dir():
        os.replace(asv, staging / ASV_DIR)
    if out_dir.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
        os.replace(out_dir, retired / out_dir.name)
        os.replace(staging, out_dir)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, out_dir)
    out_dir.chmod(0o755)


def _build_into(results_dir: Path, out: Path, *, has_asv: bool) -> None:
    results = site_data.load_results(results_dir)
    budget = site_data.site_budget(results.runs)
    suites = _registry()
    colours = optimizer_colours(results.runs["optimizer"])
    nav_suites = site_data.suite_order(
        results.runs.loc[results.runs["budget"] == budget, "suite"], suites.order) \
        if budget else []
    per_suite = site_data.suite_tables(results.runs, budget, suites.order) if budget else {}
    board = site_data.leaderboard_frame(results.runs, budget, per_suite) if budget \
        else pd.DataFrame()
    site = pages.Site(results, budget, _environment(suites.labels), out, Slugs(), colours,
                      suites, nav_suites, has_asv, board, per_suite)
    shutil.copytree(STATIC_DIR, out / "static")
    _copy_raw_files(results_dir, out / "raw")
    kernels, kernel_problems = site_data.kernel_frame(results_dir / "kernels")
    problems = sorted(results.problems + kernel_problems, key=lambda p: p.path)

    table = site_data.task_table(results.runs, budget) if budget else pd.DataFrame()
    pages.index_page(site, table, problems)
    if budget and not table.empty:
        for suite in nav_suites:
            pages.suite_page(site, table, suite)
        for task in sorted(table["task"].unique()):
            pages.task_page(site, table, task)
        for name in sorted(table["optimizer"].unique()):
            pages.optimizer_page(site, table, name)
    pages.kernels_page(site, kernels)
    pages.submit_page(site)


def _copy_raw_files(results_dir: Path, raw: Path) -> None:
    """Every run and benchmark file, valid or not, so the site links work when published."""
    for sub, pattern in (("runs", "**/*.json"), ("kernels", "*.json")):
        source = results_dir / sub
        if not source.is_dir():
            continue
        for path in sorted(source.glob(pattern)):
            if path.is_file():
                target = raw / sub / path.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
