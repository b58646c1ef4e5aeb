"""``build_site(results_dir, out_dir)``: the whole static site, built in one go.

Pages are rendered with jinja2 (autoescaped: optimizer names and docstrings are
untrusted) from ``site/templates``; the data come from ``suites.site_data``, i.e. from the
files of the results directory only; suites give their plot labels (``PLOT_LABELS``).

The build is reproducible: the same results give byte-identical files (no build time
stamps, fixed SVG ids and metadata, sorted iteration everywhere). Links are relative, so
the site opens from ``file://`` and can be published as it is; the run files it links
to are copied into it, or linked where the results directory is published (``raw_url``)
(regular files only, never a symbolic link's target, none over
``suites.results.MAX_FILE_BYTES``: results arrive by pull request). It is written to a
staging directory inside ``out_dir`` and moved into place at the end, so a failed build
leaves the previous site untouched; an ``asv/`` directory in ``out_dir`` (the asv
dashboard, published separately) is kept.

The site deletes nothing it does not own: ``out_dir`` must be missing, empty, or a site
that ``build_site`` made (it holds the ``SITE_MARKER`` file), and must not overlap the
results directory; otherwise ``SiteError`` is raised before anything is written.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import shutil
import tempfile
import urllib.parse
from pathlib import Path

import jinja2
import pandas as pd

from suites import registry, site_data
from suites.results import MAX_FILE_BYTES, walk_files
from suites.sitegen import kernel_pages, pages
from suites.sitegen.format import (
    Slugs,
    docstring_markup,
    fmt_fixed,
    fmt_interval,
    fmt_percent,
    fmt_score,
    fmt_seconds,
    fmt_signed,
    fmt_times,
    fmt_window,
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
#: The file that marks a directory as a site that ``build_site`` made (and may replace).
SITE_MARKER = ".lsb-site"
_STAGING_PREFIX = ".lsb-staging."


class SiteError(ValueError):
    """A site build refused before anything was written; the message names the problem
    and the fix."""


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
        window=fmt_window, interval=fmt_interval, signed=fmt_signed,
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


def build_site(results_dir: str | Path, out_dir: str | Path = DEFAULT_OUT,
               budget: str | None = None, raw_url: str | None = None) -> Path:
    """Render the site for ``results_dir`` into ``out_dir``; returns ``out_dir/index.html``.

    ``budget``: the budget whose runs the site reports; by default the largest budget
    with evaluation runs (``site_data.site_budget``). ``raw_url``: where the results
    directory is published (``https://.../results/``): run and benchmark files are linked
    there instead of copied into the site's ``raw/``.

    Raises ``SiteError`` (nothing written) when ``results_dir`` is not a directory or
    ``out_dir`` is not a place the site may replace (``check_destination``).
    """
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    check_destination(results_dir, out_dir)
    raw_url = check_raw_url(raw_url)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=out_dir))
    try:
        _build_into(results_dir, staging, has_asv=(out_dir / ASV_DIR).is_dir(), budget=budget,
                    raw_url=raw_url)
        (staging / SITE_MARKER).write_text(
            "This directory is a site that `lsb site build` made; it replaces it whole.\n")
        _swap_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    return out_dir / "index.html"


def check_destination(results_dir: Path, out_dir: Path) -> None:
    """Raise ``SiteError`` unless ``results_dir`` is a directory and ``out_dir`` is missing,
    an empty directory or a site that ``build_site`` made, apart from the results."""
    if not results_dir.is_dir():
        what = "is a file" if results_dir.exists() else "does not exist"
        raise SiteError(f"results directory {results_dir} {what}: pass --results DIR naming "
                        "a results directory (`lsb run` writes one)")
    results, out = results_dir.resolve(), out_dir.resolve()
    if out == results or out.is_relative_to(results) or results.is_relative_to(out):
        raise SiteError(f"--out {out_dir} overlaps the results directory {results_dir}: "
                        "write the site to a directory outside it (default: site/build)")
    if out_dir.is_symlink():
        raise SiteError(f"--out {out_dir} is a symbolic link: name the directory itself")
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise SiteError(f"--out {out_dir} is a file: name a new or empty directory")
    marker = out_dir / SITE_MARKER
    if marker.is_file() and not marker.is_symlink():
        return
    if any(out_dir.iterdir()):
        raise SiteError(
            f"--out {out_dir} is not empty and is not a site that `lsb site build` made "
            f"(no {SITE_MARKER} file in it), so it will not be replaced: name a new or "
            "empty directory (a site built by an lsb older than the marker: remove it once)")


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    """Replace the contents of ``out_dir`` by those of ``staging`` (a directory inside it),
    keeping ``out_dir/asv``. Entries are moved, not copied, so each appears whole; ``out_dir``
    itself stays (it may be the current directory)."""
    retired = Path(tempfile.mkdtemp(prefix=".lsb-old.", dir=out_dir))
    try:
        for entry in sorted(out_dir.iterdir()):
            if entry.name not in (ASV_DIR, staging.name, retired.name):
                os.replace(entry, retired / entry.name)
        for entry in sorted(staging.iterdir()):
            os.replace(entry, out_dir / entry.name)
        staging.rmdir()
    except BaseException:
        for entry in retired.iterdir():  # put back what the new site did not replace
            if not (out_dir / entry.name).exists():
                os.replace(entry, out_dir / entry.name)
        raise
    finally:
        shutil.rmtree(retired, ignore_errors=True)


def check_raw_url(raw_url: str | None) -> str | None:
    """``raw_url`` ending in one slash; ``SiteError`` unless it is an http(s) URL with a
    host and no query or fragment (the run files' paths are appended to it)."""
    if raw_url is None:
        return None
    parts = urllib.parse.urlsplit(raw_url)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query \
            or parts.fragment or any(c in raw_url for c in "\"'<> "):
        raise SiteError(f"--raw-url {raw_url!r} is not an http(s) URL of a directory: give "
                        "where the results directory is published, e.g. "
                        "https://example.org/lsb/results/")
    return raw_url.rstrip("/") + "/"


def _build_into(results_dir: Path, out: Path, *, has_asv: bool,
                budget: str | None = None, raw_url: str | None = None) -> None:
    results = site_data.load_results(results_dir)
    budget = budget or site_data.site_budget(results.runs)
    suites = _registry()
    colours = optimizer_colours(results.runs["optimizer"])
    nav_suites = site_data.suite_order(
        results.runs.loc[results.runs["budget"] == budget, "suite"], suites.order) \
        if budget else []
    per_suite = site_data.suite_tables(results.runs, budget, suites.order) if budget else {}
    board = site_data.leaderboard_frame(results.runs, budget, per_suite) if budget \
        else pd.DataFrame()
    site = pages.Site(results, budget, _environment(suites.labels), out, Slugs(), colours,
                      suites, nav_suites, has_asv, board, per_suite, raw_url)
    shutil.copytree(STATIC_DIR, out / "static")
    if raw_url is None:
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
    kernel_pages.kernels_page(site, kernels)
    pages.submit_page(site)


def _copy_raw_files(results_dir: Path, raw: Path) -> None:
    """Every run and benchmark file, valid or not, so the site links work when published:
    regular files only, none over ``MAX_FILE_BYTES`` (``walk_files`` reports the others,
    and ``site_data`` lists them as problems)."""
    for sub, recursive in (("runs", True), ("kernels", False)):
        for path, problem in walk_files(results_dir / sub, recursive=recursive):
            if problem is not None:
                continue
            try:
                # O_NOFOLLOW: a file swapped for a link since it was checked is not read.
                with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as source:
                    data = source.read(MAX_FILE_BYTES)
            except OSError:
                continue  # unreadable: listed as a problem, without a link
            target = raw / path.relative_to(results_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
