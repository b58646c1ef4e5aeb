"""The static leaderboard site: ``build_site(results_dir, out_dir)`` and ``lsb site``.

Pages are rendered with jinja2 (autoescaped: optimizer names and docstrings are
untrusted) from ``site/templates``; plots are matplotlib figures inlined as SVG. The
data comes from ``suites.site_data``, i.e. from the files of the results directory only.

The build is reproducible: the same results give byte-identical files (no build time
stamps, fixed SVG ids and metadata, sorted iteration everywhere). Links are relative, so
the site opens from ``file://`` and can be published as it is; the run files it links
to are copied into it. It is written to a temporary directory next to ``out_dir`` and
swapped into place at the end, so a failed build leaves the previous site untouched;
an ``asv/`` directory in ``out_dir`` (the asv dashboard, published separately) is kept.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import io
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import matplotlib
import numpy as np
import pandas as pd
from markupsafe import Markup

from suites import leaderboard, site_data
from suites.api import BUDGET_NAMES, MAX_CONFIGS

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib import ticker  # noqa: E402

log = logging.getLogger(__name__)

SITE_DIR = Path(__file__).resolve().parent.parent / "site"
TEMPLATES_DIR = SITE_DIR / "templates"
STATIC_DIR = SITE_DIR / "static"
#: The submission that the "Submit" page shows, verbatim (the tests submit it).
EXAMPLE_SUBMISSION = SITE_DIR / "example_optimizer.py"
DEFAULT_OUT = Path("site/build")
#: Kept across rebuilds: ``asv publish`` writes the kernels' history dashboard here.
ASV_DIR = "asv"

#: One colour per optimizer, by the index of its name among all optimizers sorted.
PALETTE = (
    "#4363d8", "#e6194b", "#3cb44b", "#f58231", "#911eb4", "#1fa2c8", "#f032e6",
    "#469990", "#9a6324", "#800000", "#808000", "#000075", "#a9a9a9", "#000000",
    "#b8860b", "#6a5acd", "#ff69b4", "#2e8b57", "#d2691e", "#708090",
)
PLOT_STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "lsb",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "axes.edgecolor": "#8a8f98",
    "axes.linewidth": 0.8,
    "axes.grid": True,
    "grid.color": "#e3e5e8",
    "grid.linewidth": 0.7,
    "xtick.color": "#4a4f57",
    "ytick.color": "#4a4f57",
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "figure.dpi": 100,
}
#: Bar colours of kernel implementations on the kernels page (fused ones first).
IMPL_COLOURS = ("#4363d8", "#a9a9a9", "#f58231", "#3cb44b", "#911eb4", "#469990")
#: Plots of quantities evaluated during training, at most, per task page.
MAX_EVAL_PLOTS = 3
#: Legend entries longer than this are cut (the full name is in the tables).
LEGEND_CHARS = 22
#: Axis labels of quantities that tasks record, where the field name reads badly.
QUANTITY_LABELS = {
    "hessian_trace": "Hessian trace Tr ∇²f",
    "u_sq_norm": "‖u‖²",
    "v_sq": "v²",
    "steps_to_escape": "steps to escape",
    "effective_loss": "effective loss f_σ^eff",
}


# --------------------------------------------------------------------------- names → files


class Slugs:
    """File-name-safe, unique names for optimizers and tasks (untrusted text)."""

    def __init__(self) -> None:
        self._by_name: dict[tuple[str, str], str] = {}
        self._taken: set[tuple[str, str]] = set()

    def __call__(self, kind: str, name: str) -> str:
        key = (kind, name)
        if key not in self._by_name:
            slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name.replace("/", "--")).strip("-.")
            if slug != name.replace("/", "--") or not slug or (kind, slug) in self._taken:
                digest = hashlib.sha256(name.encode()).hexdigest()[:8]
                slug = f"{slug[:48]}-{digest}" if slug else digest
            self._taken.add((kind, slug))
            self._by_name[key] = slug
        return self._by_name[key]


def optimizer_colours(names: Iterable[str]) -> dict[str, str]:
    """Colour by the index of each name among all of them, sorted: stable across pages."""
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(sorted(set(names)))}


# --------------------------------------------------------------------------- formatting


def fmt_score(value: Any, digits: int = 4) -> str:
    """A score for a table: 4 significant digits; a failure (±inf) as "fail"."""
    if value is None:
        return "—"
    value = float(value)
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "fail"
    return f"{value:.{digits}g}"


def fmt_fixed(value: Any, digits: int = 3) -> str:
    if value is None or not math.isfinite(float(value)):
        return "—"
    return f"{float(value):.{digits}f}"


def fmt_percent(value: Any) -> str:
    if value is None or not math.isfinite(float(value)):
        return "—"
    percent = 100 * float(value)
    return f"{percent:.1f}%" if 0 < abs(percent) < 10 else f"{percent:.0f}%"


def fmt_times(value: Any) -> str:
    if value is None or not math.isfinite(float(value)):
        return "—"
    return f"{float(value):.2f}×"


def fmt_seconds(value: Any) -> str:
    """A duration with a unit that keeps 3 significant digits."""
    if value is None or not math.isfinite(float(value)):
        return "—"
    value = float(value)
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def sort_key(value: Any) -> str:
    """``data-sort`` of a numeric cell: empty for missing (sorted last), ±Infinity kept."""
    if value is None:
        return ""
    value = float(value)
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def quantity_label(name: str) -> str:
    return QUANTITY_LABELS.get(name, name.replace("_", " "))


def docstring_markup(text: str) -> Markup:
    """A docstring paragraph as HTML: escaped, with ``code`` (RST literals) as <code>."""
    escaped = str(Markup.escape(text))
    code = lambda match: f"<code>{match.group(1) or match.group(2)}</code>"
    return Markup(re.sub(r"``(.+?)``|`([^`]+)`", code, escaped))


def paragraphs(text: str) -> list[str]:
    """A docstring's paragraphs (blank-line separated), lines within joined."""
    blocks = re.split(r"\n\s*\n", text.strip())
    return [" ".join(line.strip() for line in b.splitlines()) for b in blocks if b.strip()]


# --------------------------------------------------------------------------- plots


def _svg(fig: plt.Figure, salt: str) -> Markup:
    """The figure as inline SVG markup: deterministic ids, no metadata, scalable."""
    buffer = io.StringIO()
    with plt.rc_context({"svg.hashsalt": salt}):
        fig.savefig(buffer, format="svg",
                    metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", text, count=1)
    text = text.replace("<svg", '<svg role="img" class="plot"', 1)
    return Markup(text)  # matplotlib's own output; every label in it was escaped by it


def _figure(width: float, height: float, *, left: float = 0.75, right: float = 1.75,
            bottom: float = 0.55, top: float = 0.2, **kwargs: Any):
    """A figure with fixed margins in inches (room for a legend on the right).

    Fixed margins instead of ``bbox_inches="tight"``: one draw per figure instead of two.
    """
    fig, axes = plt.subplots(figsize=(width, height), **kwargs)
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                        top=1 - top / height, wspace=0.08)
    return fig, axes


def _legend(ax: plt.Axes) -> None:
    """Legend to the right of the axes; long names are cut to fit the margin."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        labels = [label if len(label) <= LEGEND_CHARS else label[:LEGEND_CHARS - 1] + "…"
                  for label in labels]
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  borderaxespad=0.0, handlelength=1.6)


def _log_axis(ax: plt.Axes, which: str = "y") -> None:
    """Log scale labelled with plain numbers, at 1, 2 and 5 × 10^k when it spans few decades."""
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    axis = ax.yaxis if which == "y" else ax.xaxis
    limits = ax.get_ylim() if which == "y" else ax.get_xlim()
    low, high = sorted(v for v in limits if v > 0) or (1.0, 10.0)
    if high / low < 1e3:
        axis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def plot_profile(profile: pd.DataFrame, order: Sequence[str], colours: dict[str, str]) -> Markup:
    """Performance profiles ρ(τ), one step curve per optimizer, legend in rank order."""
    with plt.rc_context(PLOT_STYLE):
        fig, ax = _figure(8.0, 3.9)
        for rank, name in enumerate(order):  # the best drawn on top
            ax.step(profile.index, profile[name], where="post", color=colours[name],
                    linewidth=1.6, label=name, zorder=2 + len(order) - rank)
        ax.set_xlim(1.0, float(profile.index[-1]))
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("τ (score within a factor τ of the best on the task)")
        ax.set_ylabel("share of tasks  ρ(τ)")
        _legend(ax)
        return _svg(fig, "profile")


def plot_bands(bands: dict[str, site_data.Band], colours: dict[str, str], *, ylabel: str,
               scale: str, salt: str, xlabel: str = "step") -> Markup:
    """Median over seeds with the min–max band, one colour per optimizer.

    ``bands`` in rank order: the legend follows it and the best curve is drawn on top.
    ``scale``: "linear", "log", or "symlog" (a loss that reaches zero and also spikes).
    """
    with plt.rc_context(PLOT_STYLE):
        fig, ax = _figure(8.0, 3.6, left=0.95)
        count = len(bands)
        for order, (name, band) in enumerate(bands.items()):
            colour, z = colours[name], 2 + count - order
            if len(band.steps) == 1:
                ax.errorbar(band.steps, band.median,
                            yerr=[band.median - band.low, band.high - band.median],
                            fmt="o", color=colour, markersize=4, label=name, zorder=z)
                continue
            ax.fill_between(band.steps, band.low, band.high, color=colour, alpha=0.15,
                            linewidth=0, zorder=z)
            ax.plot(band.steps, band.median, color=colour, linewidth=1.5, label=name, zorder=z)
        if scale == "symlog":
            positive = np.concatenate([b.median[b.median > 0] for b in bands.values()])
            floor = float(np.percentile(positive, 5)) if len(positive) else 1.0
            ax.set_yscale("symlog", linthresh=10.0 ** math.floor(math.log10(floor)))
            ax.set_ylim(bottom=0.0)
        else:
            _clip_outliers(ax, bands, scale == "log")
            if scale == "log":
                _log_axis(ax)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        _legend(ax)
        return _svg(fig, salt)


def _clip_outliers(ax: plt.Axes, bands: dict[str, site_data.Band], log: bool) -> None:
    """Keep a diverging run from flattening every other curve: cap the y range."""
    values = np.concatenate([np.concatenate([b.low, b.median, b.high]) for b in bands.values()]
                            or [np.zeros(0)])
    values = values[np.isfinite(values)]
    if len(values) < 10:
        return
    low, high = float(values.min()), float(np.percentile(values, 98))
    if log and low > 0 and values.max() > 100 * high:
        ax.set_ylim(low / 2, high * 10)
    elif not log and values.max() - low > 10 * (high - low) > 0:
        ax.set_ylim(low - 0.05 * (high - low), high + 0.5 * (high - low))


def plot_seed_scores(points: dict[str, list[float]], colours: dict[str, str], *, ylabel: str,
                     higher_is_better: bool, salt: str) -> Markup:
    """Each evaluation seed's score per optimizer (best first); failed seeds as ×."""
    names = list(points)
    finite = [v for values in points.values() for v in values if math.isfinite(v)]
    log = bool(finite) and min(finite) > 0 and max(finite) / min(finite) > 20
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if log:
        failed_at = high * (high / low) ** 0.15
    else:
        failed_at = high + 0.15 * ((high - low) or max(abs(high), 1.0))
    any_failed = any(not math.isfinite(v) for values in points.values() for v in values)
    with plt.rc_context(PLOT_STYLE):
        fig, ax = _figure(8.0, 3.6, left=0.95, right=0.25, bottom=1.1)
        for x, name in enumerate(names):
            values = np.array(points[name], dtype=float)
            ok = np.isfinite(values)
            offsets = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(1)
            ax.plot(x + offsets[ok], values[ok], marker="o", markersize=5, linestyle="none",
                    color=colours[name], zorder=3)
            ax.plot(x + offsets[~ok], np.full(int((~ok).sum()), failed_at), marker="x",
                    markersize=6, linestyle="none", color=colours[name], zorder=3)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_xlim(-0.6, len(names) - 0.4)
        if log:
            _log_axis(ax)
        if any_failed:  # failed seeds sit on their own row above the scores
            ticks = [t for t in ax.get_yticks() if low <= t <= high] if finite else []
            ax.set_yticks(ticks + [failed_at], [f"{t:g}" for t in ticks] + ["failed"])
            ax.yaxis.set_minor_locator(ticker.NullLocator())
            separator = (high * failed_at) ** 0.5 if log else (high + failed_at) / 2
            ax.axhline(separator, color="#c9ccd1", linewidth=0.8, linestyle="--")
        direction = "higher is better" if higher_is_better else "lower is better"
        ax.set_ylabel(f"{ylabel} ({direction})")
        ax.grid(axis="x", visible=False)
        return _svg(fig, salt)


def plot_depth_scaling(series: dict[str, dict[str, list[tuple[int, float, bool]]]],
                       colours: dict[str, str], *, ylabel: str, salt: str) -> Markup:
    """Score vs depth on log–log axes, one panel per variant; failed points hollow."""
    variants = list(series)
    with plt.rc_context(PLOT_STYLE):
        fig, axes = _figure(8.6, 3.6, top=0.35, ncols=len(variants), sharey=True,
                            squeeze=False)
        for ax, variant in zip(axes[0], variants, strict=True):
            for name, points in series[variant].items():
                points = sorted(points)
                depths = [d for d, _, _ in points]
                values = [v for _, v, _ in points]
                ax.plot(depths, values, color=colours[name], linewidth=1.4, label=name,
                        marker="o", markersize=3.5)
                failed = [(d, v) for d, v, f in points if f]
                if failed:
                    ax.plot(*zip(*failed, strict=True), marker="o", markersize=6.5,
                            linestyle="none", markerfacecolor="white",
                            markeredgecolor=colours[name], markeredgewidth=1.2, zorder=4)
            ax.set_xscale("log", base=2)
            _log_axis(ax)
            depths = sorted({d for pts in series[variant].values() for d, _, _ in pts})
            ax.set_xticks(depths, [str(d) for d in depths])
            ax.minorticks_off()
            ax.set_xlabel("depth")
            ax.set_title(f"init: {variant}" if variant else "")
        axes[0][0].set_ylabel(ylabel)
        _legend(axes[0][-1])
        return _svg(fig, salt)


def plot_sweep(sweep: pd.DataFrame, tasks: Sequence[str], chosen: dict[str, str],
               colour: str, salt: str) -> Markup:
    """Every tuning configuration's score relative to the best one, per task."""
    with plt.rc_context(PLOT_STYLE):
        height = max(2.0, 0.3 * len(tasks) + 0.9)
        label = max((len(t) for t in tasks), default=8)
        fig, ax = _figure(8.0, height, left=0.25 + 0.075 * label, right=0.25)
        finite = sweep["ratio"][np.isfinite(sweep["ratio"])]
        fail_at = max(10.0, float(finite.max()) * 2.0) if len(finite) else 10.0
        for y, task in enumerate(tasks):
            rows = sweep[sweep["task"] == task]
            ratios = rows["ratio"].to_numpy(dtype=float)
            ok = np.isfinite(ratios)
            near = rows["near_best"].to_numpy(dtype=bool)
            dots = {"linestyle": "none", "markersize": 5.5, "zorder": 3}
            ax.plot(ratios[ok & near], [y] * int((ok & near).sum()), marker="o", color=colour,
                    **dots)
            ax.plot(ratios[ok & ~near], [y] * int((ok & ~near).sum()), marker="o",
                    markerfacecolor="white", markeredgecolor=colour, markeredgewidth=1.1, **dots)
            ax.plot([fail_at] * int((~ok).sum()), [y] * int((~ok).sum()), marker="x",
                    color="#8a8f98", **dots)
            picked = (rows["config"] == chosen.get(task)).to_numpy()
            ax.plot(np.where(ok, ratios, fail_at)[picked], [y] * int(picked.sum()),
                    marker="o", markersize=11, markerfacecolor="none", markeredgecolor="#1f2328",
                    markeredgewidth=1.0, linestyle="none", zorder=4)
        _log_axis(ax, "x")
        if not np.isfinite(sweep["ratio"]).all():  # failed configurations get their own column
            top = float(finite.max()) if len(finite) else 1.0
            ticks = [t for t in ax.get_xticks() if 1.0 <= t <= top * 1.5]
            ax.set_xticks(ticks + [fail_at], [f"{t:g}" for t in ticks] + ["failed"])
            ax.xaxis.set_minor_locator(ticker.NullLocator())
            ax.axvline((top * fail_at) ** 0.5, color="#c9ccd1", linewidth=0.8, linestyle="--")
        ax.set_yticks(range(len(tasks)), tasks)
        ax.invert_yaxis()
        ax.set_xlabel("tuning score ÷ best configuration's (1 = best)")
        ax.grid(axis="y", visible=False)
        return _svg(fig, salt)


def plot_bandwidth(rows: Sequence[dict[str, Any]], device: str, salt: str) -> Markup | None:
    """Achieved GB/s per kernel and size, one bar per implementation, the peak dashed."""
    rows = [r for r in rows if math.isfinite(r["gbps"])]
    if not rows:
        return None
    cases = list(dict.fromkeys((r["kernel"], r["size"]) for r in rows))
    impls = sorted({r["impl"] for r in rows}, key=lambda i: (i not in site_data.FUSED_IMPLS, i))
    colours = {impl: IMPL_COLOURS[i % len(IMPL_COLOURS)] for i, impl in enumerate(impls)}
    gbps = {(r["kernel"], r["size"], r["impl"]): r["gbps"] for r in rows}
    bars = [(case, impl) for case in cases for impl in impls if (*case, impl) in gbps]
    with plt.rc_context(PLOT_STYLE):
        fig, ax = _figure(8.0, 0.75 + 0.2 * len(bars) + 0.15 * len(cases),
                          left=1.9, right=1.5, bottom=0.5, top=0.15)
        y, ticks, seen = 0.0, [], set()
        for case in cases:
            present = [impl for impl in impls if (*case, impl) in gbps]
            start = y
            for impl in present:
                label = impl if impl not in seen else "_nolegend_"
                seen.add(impl)
                ax.barh(y, gbps[(*case, impl)], height=0.85, color=colours[impl], label=label)
                y += 1.0
            ticks.append((start + y - 1.0) / 2)
            y += 0.8
        peaks = {r["peak_gbps"] for r in rows if math.isfinite(r["peak_gbps"])}
        for peak in sorted(peaks):
            ax.axvline(peak, color="#1f2328", linewidth=0.9, linestyle="--", label="peak")
        ax.set_yticks(ticks, [f"{kernel} {size}" for kernel, size in cases])
        ax.invert_yaxis()
        ax.set_xlabel(f"achieved GB/s on {device}")
        ax.grid(axis="y", visible=False)
        _legend(ax)
        return _svg(fig, salt)


# --------------------------------------------------------------------------- the site


@dataclass
class _Site:
    """What every page needs: data, names → files, colours, the page renderer."""

    results: site_data.Results
    budget: str | None
    env: jinja2.Environment
    out: Path
    slugs: Slugs
    colours: dict[str, str]
    tasks: dict[str, Any]  # registry tasks by name (descriptions and budgets)
    suite_docs: dict[str, str]
    nav_suites: list[str]
    has_asv: bool
    board: pd.DataFrame  # site_data.leaderboard_frame at the site's budget
    suite_tables: dict[str, pd.DataFrame]  # site_data.suite_tables at the site's budget

    @functools.cached_property
    def _eval_index(self) -> dict[tuple[str, str, str], list[str]]:
        return site_data.eval_file_index(self.results.current, self.budget)

    def eval_files(self, task: str, optimizer: str, config: str) -> list[str]:
        """The evaluation run files of ``config`` of ``optimizer`` on ``task``, by seed."""
        return self._eval_index.get((task, optimizer, config), [])

    def optimizer_href(self, name: str, root: str) -> str:
        return f"{root}optimizer/{self.slugs('optimizer', name)}.html"

    def task_href(self, name: str, root: str) -> str:
        return f"{root}task/{self.slugs('task', name)}.html"

    def suite_href(self, name: str, root: str) -> str:
        return f"{root}suite/{self.slugs('suite', name)}.html"

    def raw_href(self, file: str, root: str) -> str:
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


def _environment() -> jinja2.Environment:
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
        paragraphs=paragraphs, docmarkup=docstring_markup, quantity=quantity_label,
    )
    env.tests["finite_number"] = lambda v: v is not None and math.isfinite(float(v))
    return env


def _registry() -> tuple[dict[str, Any], dict[str, str]]:
    """Tasks by name and suite descriptions from the registry (empty if it cannot load)."""
    import importlib

    from suites import registry

    try:
        tasks = {t.name: t for t in registry.all_tasks()}
    except (ImportError, ValueError) as err:
        log.warning("task descriptions unavailable: %s", err)
        return {}, {}
    docs = {}
    for suite in registry.available_suites():
        docs[suite] = importlib.import_module(f"suites.{suite}").__doc__ or ""
    return tasks, docs


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
    tasks, suite_docs = _registry()
    colours = optimizer_colours(results.runs["optimizer"])
    nav_suites = site_data.suite_order(
        results.runs.loc[results.runs["budget"] == budget, "suite"]) if budget else []
    per_suite = site_data.suite_tables(results.runs, budget) if budget else {}
    board = site_data.leaderboard_frame(results.runs, budget, per_suite) if budget \
        else pd.DataFrame()
    site = _Site(results, budget, _environment(), out, Slugs(), colours, tasks, suite_docs,
                 nav_suites, has_asv, board, per_suite)
    shutil.copytree(STATIC_DIR, out / "static")
    _copy_raw_files(results_dir, out / "raw")
    kernels, kernel_problems = site_data.kernel_frame(results_dir / "kernels")
    problems = sorted(results.problems + kernel_problems, key=lambda p: p.path)

    table = leaderboard.task_table(results.runs, budget) if budget else pd.DataFrame()
    _index_page(site, table, problems)
    if budget and not table.empty:
        for suite in nav_suites:
            _suite_page(site, table, suite)
        for task in sorted(table["task"].unique()):
            _task_page(site, table, task)
        for name in sorted(table["optimizer"].unique()):
            _optimizer_page(site, table, name)
    _kernels_page(site, kernels)
    _submit_page(site)


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


# --------------------------------------------------------------------------- pages


def _index_page(site: _Site, table: pd.DataFrame, problems: list[site_data.FileProblem]) -> None:
    runs = site.results.runs
    board = site.board
    suites = [c.removeprefix("suite:") for c in board.columns if c.startswith("suite:")]
    plot = None
    if not table.empty:
        profile = site_data.profile_curves(runs, site.budget)
        plot = plot_profile(profile, list(board["optimizer"]), site.colours)
    suite_rows = []
    for suite in site.nav_suites:
        rows = table[table["suite"] == suite] if not table.empty else table
        suite_rows.append({"name": suite, "tasks": rows["task"].nunique() if len(rows) else 0,
                           "optimizers": rows["optimizer"].nunique() if len(rows) else 0})
    superseded = leaderboard.superseded_versions(runs) if not runs.empty else pd.DataFrame()
    site.render(
        "index.html", "index.html",
        board=board.to_dict("records"), suites=suites, profile_plot=plot,
        suite_rows=suite_rows, problems=problems,
        superseded=superseded.to_dict("records"),
        budgets=site_data.budget_counts(runs), tau_max=leaderboard.TAU_MAX,
        eval_runs=int((runs["phase"] == "eval").sum()),
    )


def _task_rows(site: _Site, table: pd.DataFrame, task: str, root: str) -> list[dict]:
    rows = []
    for row in table[table["task"] == task].to_dict("records"):
        files = site.eval_files(task, row["optimizer"], row["config"])
        row["files"] = [(f"seed {site.results.records[f]['seed']}", site.raw_href(f, root))
                        for f in files]
        row["succeeded"] = round(row["success_rate"] * row["seeds"])
        rows.append(row)
    return rows


def _metric(site: _Site, task: str) -> dict[str, Any]:
    """The task's metric as the runs recorded it."""
    runs = site.results.runs
    first = runs[runs["task"] == task]["file"].iloc[0]
    return site.results.records[first].get("metric") or {}


def _suite_page(site: _Site, table: pd.DataFrame, suite: str) -> None:
    root = "../"
    order = site_data.task_order(table.loc[table["suite"] == suite, "task"], list(site.tasks))
    task_rows = []
    for task in order:
        best = table[(table["task"] == task) & (table["rank"] == 1)]
        task_rows.append({
            "name": task, "href": site.task_href(task, root), "metric": _metric(site, task),
            "best": list(best["optimizer"]), "best_score": best["score_mean"].iloc[0]
            if len(best) else math.nan,
            "optimizers": int((table["task"] == task).sum()),
        })
    overall = site.suite_tables[suite]
    matrix = site_data.ranking_matrix(table, suite)
    scores = table[table["suite"] == suite].set_index(["optimizer", "task"])["score_mean"]
    ranking = []
    for name in overall["optimizer"]:
        cells = []
        for task in order:
            if name in matrix.index and not pd.isna(matrix.loc[name, task]):
                cells.append({"rank": int(matrix.loc[name, task]),
                              "score": scores[(name, task)]})
            else:
                cells.append(None)
        ranking.append({"optimizer": name, "cells": cells})
    plots = _suite_plots(site, table, suite, order)
    site.render(
        "suite.html", f"suite/{site.slugs('suite', suite)}.html",
        suite=suite, description=site.suite_docs.get(suite, ""), task_rows=task_rows,
        overall=overall.to_dict("records"), ranking=ranking,
        short_tasks=[t.removeprefix(f"{suite}/") for t in order],
        task_hrefs=[site.task_href(t, root) for t in order], plots=plots,
    )


def _suite_plots(site: _Site, table: pd.DataFrame, suite: str, order: list[str]) -> list[dict]:
    """Plots that fit the suite: score vs depth where tasks vary a depth, seed scores."""
    plots = []
    depth_tasks = {t: re.search(r"depth-(\d+)(?:-(\w+))?$", t) for t in order}
    depth_tasks = {t: m for t, m in depth_tasks.items() if m}
    if len({int(m.group(1)) for m in depth_tasks.values()}) >= 2:
        metric = _metric(site, next(iter(depth_tasks)))
        series: dict[str, dict[str, list]] = {}
        for task, match in depth_tasks.items():
            variant = match.group(2) or ""
            for row in table[table["task"] == task].itertuples():
                value = float(row.score_mean)
                failed = not math.isfinite(value)
                if failed:  # plotted at the steps the runs had: "not within the budget"
                    runs = site.results.runs
                    value = float(runs.loc[(runs["task"] == task)
                                           & (runs["budget"] == site.budget), "steps_run"].max())
                series.setdefault(variant, {}).setdefault(row.optimizer, []).append(
                    (int(match.group(1)), value, failed))
        label = quantity_label(metric.get("name", "score"))
        plots.append({
            "title": f"{label[0].upper() + label[1:]} against depth",
            "caption": "Mean over evaluation seeds of each optimizer's tuned configuration, "
                       "log–log axes. A hollow marker means the runs failed (did not reach "
                       "the target within the budget) and sits at the budget's step count.",
            "svg": plot_depth_scaling(dict(sorted(series.items())), site.colours,
                                      ylabel=label, salt=f"depth-{suite}"),
        })
    for task in order:
        if task in depth_tasks:
            continue
        plots.append(_seed_plot(site, table, task, f"{task}: score of each evaluation seed"))
    return plots


def _seed_plot(site: _Site, table: pd.DataFrame, task: str, title: str) -> dict:
    rows = table[table["task"] == task]
    metric = _metric(site, task)
    points = {}
    for row in rows.itertuples():
        files = site.eval_files(task, row.optimizer, row.config)
        points[row.optimizer] = [float(site.results.records[f]["score"]) for f in files]
    label = quantity_label(metric.get("name", "score"))
    return {
        "title": title,
        "caption": "One dot per evaluation seed of each optimizer's tuned configuration, "
                   "optimizers in rank order; × marks a failed seed.",
        "svg": plot_seed_scores(points, site.colours, ylabel=label,
                                higher_is_better=bool(metric.get("higher_is_better")),
                                salt=f"seeds-{task}"),
    }


def _task_page(site: _Site, table: pd.DataFrame, task: str) -> None:
    root = "../"
    rows = _task_rows(site, table, task, root)
    metric = _metric(site, task)
    registered = site.tasks.get(task)
    records_by_optimizer = {
        row["optimizer"]: [site.results.records[f]
                           for f in site.eval_files(task, row["optimizer"], row["config"])]
        for row in rows
    }
    plots = []
    losses = [v for rs in records_by_optimizer.values() for r in rs
              for v in (r.get("curve") or {}).get("loss", []) if math.isfinite(v)]
    log = bool(losses) and min(losses) > 0
    # A loss that reaches zero cannot go on a log axis; symlog keeps its spikes readable.
    scale = "log" if log else ("symlog" if losses and max(losses) > 0 else "linear")
    loss_bands = _bands(records_by_optimizer, "step", "loss", log=log)
    if loss_bands:
        plots.append({
            "title": "Training loss",
            "caption": "Median over evaluation seeds (line) and their range (band), for each "
                       "optimizer's tuned configuration. A curve ends where its runs stopped "
                       "(target reached or diverged).",
            "svg": plot_bands(loss_bands, site.colours, ylabel="minibatch loss", scale=scale,
                              salt=f"loss-{task}"),
        })
    name = metric.get("name")
    keys = _eval_keys_to_plot(
        site_data.eval_curve_keys(r for rs in records_by_optimizer.values() for r in rs), name)
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
        label = quantity_label(key)
        plots.append({
            "title": f"{label[0].upper() + label[1:]} during training",
            "caption": "Evaluated periodically; median over evaluation seeds and range.",
            "svg": plot_bands(bands, site.colours, ylabel=label,
                              scale="log" if log else "linear",
                              salt=f"eval-{key}-{task}"),
        })
    if name not in plotted:  # the metric is known only at the end of the runs
        plots.append(_seed_plot(site, table, task, "Score of each evaluation seed"))
    suite = rows[0]["suite"] if rows else task.split("/", 1)[0]
    site.render(
        "task.html", f"task/{site.slugs('task', task)}.html",
        task=task, suite=suite, metric=metric, rows=rows, plots=plots,
        description=registered.description if registered is not None else "",
        budgets=registered.budgets if registered is not None else None,
        budget_names=BUDGET_NAMES,
    )


def _eval_keys_to_plot(keys: Sequence[str], metric: str | None) -> list[str]:
    """Of the quantities evaluated during training, those worth a plot: the task's metric,
    accuracies and the valley's geometry (training loss has its own plot)."""
    def wanted(key: str) -> bool:
        return key == metric or key in QUANTITY_LABELS or (
            "accuracy" in key and not key.startswith("steps"))

    chosen = [k for k in keys if wanted(k) and not k.startswith("steps_to")]
    if metric in chosen:
        chosen = [metric] + [k for k in chosen if k != metric]
    return chosen[:MAX_EVAL_PLOTS]


def _bands(records_by_optimizer: dict[str, list[dict]], x: str, y: str, *, log: bool
           ) -> dict[str, site_data.Band]:
    bands = {}
    for name, records in records_by_optimizer.items():
        curves = [((r.get("curve") or {}).get(x, []), (r.get("curve") or {}).get(y, []))
                  for r in records]
        band = site_data.curve_band(curves, log=log)
        if band is not None:
            bands[name] = band
    return bands


def _optimizer_page(site: _Site, table: pd.DataFrame, name: str) -> None:
    from suites import registry

    root = "../"
    runs = site.results.runs
    current = site.results.current
    mine = current[current["optimizer"] == name].sort_values("file")
    first = site.results.records[mine["file"].iloc[0]]
    builtin = registry.builtin_optimizer_paths().get(name)
    source = site_data.optimizer_source(
        name, first["optimizer"]["source_hash"], first["optimizer"]["path"] or "",
        [builtin] if builtin is not None else [])
    source_href = None
    file_name = Path(source.recorded_path).name or "(unknown)"
    if source.text is not None:
        target = f"optimizers/{site.slugs('optimizer', name)}/{file_name}"
        path = site.out / "raw" / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source.text, encoding="utf-8")
        source_href = site.raw_href(target, root)

    board = site.board
    overall = board[board["optimizer"] == name].to_dict("records")
    mine_table = table[table["optimizer"] == name]
    counts = table.groupby("task")["optimizer"].size()
    order = site_data.task_order(mine_table["task"], list(site.tasks))
    chosen_rows = []
    for task in order:
        row = mine_table[mine_table["task"] == task].iloc[0].to_dict()
        row["of"] = int(counts[task])
        row["href"] = site.task_href(task, root)
        chosen_rows.append(row)
    sweep = site_data.sweep_frame(runs, site.budget, name)
    chosen = {r["task"]: r["config"] for r in chosen_rows}
    sweep_groups = []
    sweep_tasks = site_data.task_order(sweep["task"], list(site.tasks)) if len(sweep) else []
    for task in sweep_tasks:
        rows = sweep[sweep["task"] == task].to_dict("records")
        for row in rows:
            row["chosen"] = row["config"] == chosen.get(task)
            row["links"] = [(f"seed {site.results.records[f]['seed']}", site.raw_href(f, root))
                            for f in row["files"]]
        sweep_groups.append({"task": task, "href": site.task_href(task, root), "rows": rows,
                             "metric": _metric(site, task)})
    sweep_plot = plot_sweep(sweep, sweep_tasks, chosen, site.colours[name],
                            salt=f"sweep-{site.slugs('optimizer', name)}") if len(sweep) else None
    eval_links = []
    for row in chosen_rows:
        for f in site.eval_files(row["task"], name, row["config"]):
            eval_links.append((row["task"], site.results.records[f]["seed"],
                               site.raw_href(f, root)))
    site.render(
        "optimizer.html", f"optimizer/{site.slugs('optimizer', name)}.html",
        name=name, colour=site.colours[name], source=source, file_name=file_name,
        source_href=source_href, overall=overall[0] if overall else None,
        suites=[c.removeprefix("suite:") for c in board.columns if c.startswith("suite:")],
        chosen_rows=chosen_rows, sweep_groups=sweep_groups, sweep_plot=sweep_plot,
        configs_run=int(sweep.groupby(["task"])["config"].nunique().max()) if len(sweep) else 0,
        eval_links=eval_links,
    )


def _kernels_page(site: _Site, kernels: pd.DataFrame) -> None:
    from bench import history as kernel_history

    tables = site_data.kernel_tables(kernels)
    for number, table in enumerate(tables):
        table["href"] = site.raw_href(table["file"], "")
        table["plot"] = plot_bandwidth(table["rows"], table["device"], salt=f"kernels-{number}")
    past = kernel_history.load(site.results.root)
    plots = []
    for kernel in past.kernels():
        with plt.rc_context(PLOT_STYLE):
            fig = kernel_history.figure(past, kernel, IMPL_COLOURS)
            plots.append({"kernel": kernel, "svg": _svg(fig, f"kernel-history-{kernel}")})
    site.render("kernels.html", "kernels.html", tables=tables, history_plots=plots,
                history_changes=kernel_history.changes(past), history=past,
                change_threshold=kernel_history.CHANGE_THRESHOLD, short=kernel_history.short)


def _submit_page(site: _Site) -> None:
    from suites.runner import EVAL_SEED_OFFSET, SEEDS_PER_BUDGET

    budgets = []
    for task in site.tasks.values():
        budgets.append({"name": task.name, "steps": [task.budgets.steps(b) for b in BUDGET_NAMES]})
    site.render(
        "submit.html", "submit.html",
        example=EXAMPLE_SUBMISSION.read_text(encoding="utf-8"),
        example_name=EXAMPLE_SUBMISSION.name, budgets=budgets, budget_names=BUDGET_NAMES,
        seeds=SEEDS_PER_BUDGET, eval_seed_offset=EVAL_SEED_OFFSET, max_configs=MAX_CONFIGS,
        tau_max=leaderboard.TAU_MAX,
    )


# --------------------------------------------------------------------------- serve and CLI


def make_server(out_dir: str | Path = DEFAULT_OUT, port: int = 8000
                ) -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``out_dir`` on 127.0.0.1 (``port`` 0 picks a free port)."""
    handler = functools.partial(QuietHandler, directory=str(out_dir))
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files; requests go to the log instead of stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


def serve(out_dir: str | Path = DEFAULT_OUT, port: int = 8000) -> None:
    """Serve ``out_dir`` on http://127.0.0.1:``port`` until interrupted."""
    with make_server(out_dir, port) as server:
        log.info("serving %s on http://127.0.0.1:%d", out_dir, server.server_address[1])
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``lsb site build`` and ``lsb site serve`` on the CLI's subparsers."""
    site = subparsers.add_parser("site", help="build or serve the static leaderboard site")
    actions = site.add_subparsers(dest="site_command", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="render the site from a results directory")
    build.add_argument("--results", default=None, metavar="DIR",
                       help="results directory (default: $LSB_RESULTS or ./results)")
    build.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                       help=f"where to write the site (default: {DEFAULT_OUT})")
    build.set_defaults(func=_cmd_build)
    serve_parser = actions.add_parser("serve", help="serve a built site on localhost")
    serve_parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve_parser.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                              help=f"the built site (default: {DEFAULT_OUT})")
    serve_parser.set_defaults(func=_cmd_serve)


def _cmd_build(args: argparse.Namespace) -> int:
    from suites.results import default_root

    results = Path(args.results) if args.results else default_root()
    index = build_site(results, args.out)
    print(f"site: open file://{index.resolve()}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    index = Path(args.out) / "index.html"
    if not index.is_file():
        print(f"lsb: error: no site in {args.out}/: run `lsb site build` first")
        return 2
    print(f"serving {args.out}/ at http://127.0.0.1:{args.port}/ (Ctrl-C stops)")
    serve(args.out, args.port)
    return 0
