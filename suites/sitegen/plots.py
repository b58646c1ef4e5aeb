"""The site's plots: matplotlib figures rendered to inline SVG, deterministic byte for byte.

Every optimizer has one colour and one marker on every plot (``format.optimizer_colours``,
``format.optimizer_markers``): a plot of many optimizers tells them apart by both."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from markupsafe import Markup

from suites import site_data
from suites.sitegen.format import optimizer_markers

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib import ticker  # noqa: E402

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
    # Names are data, never markup: "$\frac{$" is drawn as typed, not parsed as mathtext
    # (so log-axis ticks are formatted as plain numbers, see _plain_numbers).
    "text.parse_math": False,
}
#: Bar colours of kernel implementations on the kernels page (fused ones first).
IMPL_COLOURS = ("#4363d8", "#a9a9a9", "#f58231", "#3cb44b", "#911eb4", "#469990")
#: Legend entries longer than this are cut (the full name is in the tables).
LEGEND_CHARS = 22
#: Size of the optimizers' markers on lines and points, in points.
MARKER_SIZE = 4.5
#: Markers on a curve: one every this fraction of the axes' diagonal (``markevery``).
MARK_SPACING = 0.1



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


def _markers(colours: Mapping[str, str], markers: Mapping[str, str] | None
             ) -> Mapping[str, str]:
    """``markers``, or by default those ``optimizer_markers`` gives the names of ``colours``
    (the site's colours name every optimizer, so the default is the site's markers)."""
    return markers if markers is not None else optimizer_markers(colours)


def _markevery(position: int, count: int) -> tuple[float, float]:
    """``markevery`` of the ``position``-th of ``count`` curves: evenly spaced markers,
    each curve's shifted along the axes so that overlapping curves' markers do not hide
    one another."""
    return (MARK_SPACING * position / max(count, 1), MARK_SPACING)


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
    positive = sorted(v for v in limits if v > 0)
    low, high = (positive[0], positive[-1]) if len(positive) == 2 else (1.0, 10.0)
    if high / low < 1e3:
        axis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    _plain_numbers(axis)


def _plain_numbers(axis: Any) -> None:
    """Major ticks as plain numbers (matplotlib's log formatters write mathtext), no minor
    labels."""
    axis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def plot_profile(profile: pd.DataFrame, order: Sequence[str], colours: Mapping[str, str],
                 markers: Mapping[str, str] | None = None) -> Markup:
    """Performance profiles ρ(τ), one step curve per optimizer, legend in rank order."""
    markers = _markers(colours, markers)
    with plt.rc_context(PLOT_STYLE):
        fig, ax = _figure(8.0, 3.9)
        for rank, name in enumerate(order):  # the best drawn on top
            ax.step(profile.index, profile[name], where="post", color=colours[name],
                    linewidth=1.6, label=name, zorder=2 + len(order) - rank,
                    marker=markers[name], markersize=MARKER_SIZE,
                    markevery=_markevery(rank, len(order)))
        ax.set_xlim(1.0, float(profile.index[-1]))
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("τ (score within a factor τ of the best on the task)")
        ax.set_ylabel("share of tasks  ρ(τ)")
        _legend(ax)
        return _svg(fig, "profile")


def plot_bands(bands: dict[str, site_data.Band], colours: Mapping[str, str],
               markers: Mapping[str, str] | None = None, *, ylabel: str, scale: str, salt: str,
               xlabel: str = "step") -> Markup:
    """Median over seeds with the min–max band, one colour and marker per optimizer.

    ``bands`` in rank order: the legend follows it and the best curve is drawn on top.
    ``scale``: "linear", "log", or "symlog" (a loss that reaches zero and also spikes).
    """
    markers = _markers(colours, markers)
    with plt.rc_context(PLOT_STYLE):
        fig, ax = _figure(8.0, 3.6, left=0.95)
        count = len(bands)
        for order, (name, band) in enumerate(bands.items()):
            colour, z = colours[name], 2 + count - order
            if len(band.steps) == 1:
                ax.errorbar(band.steps, band.median,
                            yerr=[band.median - band.low, band.high - band.median],
                            marker=markers[name], linestyle="none", color=colour,
                            markersize=MARKER_SIZE, label=name, zorder=z)
                continue
            ax.fill_between(band.steps, band.low, band.high, color=colour, alpha=0.15,
                            linewidth=0, zorder=z)
            ax.plot(band.steps, band.median, color=colour, linewidth=1.5, label=name, zorder=z,
                    marker=markers[name], markersize=MARKER_SIZE,
                    markevery=_markevery(order, count))
        if scale == "symlog":
            positive = np.concatenate([b.median[b.median > 0] for b in bands.values()])
            floor = float(np.percentile(positive, 5)) if len(positive) else 1.0
            ax.set_yscale("symlog", linthresh=10.0 ** math.floor(math.log10(floor)))
            ax.set_ylim(bottom=0.0)
            _plain_numbers(ax.yaxis)
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


def plot_seed_scores(points: dict[str, list[float]], colours: Mapping[str, str],
                     markers: Mapping[str, str] | None = None, *, ylabel: str,
                     higher_is_better: bool, salt: str) -> Markup:
    """Each evaluation seed's score per optimizer (best first), in the optimizer's marker;
    failed seeds as ×."""
    markers = _markers(colours, markers)
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
            ax.plot(x + offsets[ok], values[ok], marker=markers[name], markersize=5,
                    linestyle="none", color=colours[name], label=name, zorder=3)
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


def plot_scaling(series: dict[str, dict[str, list[tuple[float, float, bool]]]],
                 colours: Mapping[str, str], markers: Mapping[str, str] | None = None, *,
                 xlabel: str, ylabel: str, salt: str) -> Markup:
    """Score against a suite's scaling axis (depth, width) on log–log axes, one panel per
    variant (``site_data.scaling_series``); failed points hollow."""
    markers = _markers(colours, markers)
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
                        marker=markers[name], markersize=MARKER_SIZE)
                failed = [(d, v) for d, v, f in points if f]
                if failed:
                    ax.plot(*zip(*failed, strict=True), marker=markers[name], markersize=7,
                            linestyle="none", markerfacecolor="white",
                            markeredgecolor=colours[name], markeredgewidth=1.2, zorder=4)
            ax.set_xscale("log", base=2)
            _log_axis(ax)
            depths = sorted({d for pts in series[variant].values() for d, _, _ in pts})
            ax.set_xticks(depths, [f"{d:g}" for d in depths])
            ax.minorticks_off()
            ax.set_xlabel(xlabel)
            ax.set_title(variant)
        axes[0][0].set_ylabel(ylabel)
        _legend(axes[0][-1])
        return _svg(fig, salt)


def plot_sweep(sweep: pd.DataFrame, tasks: Sequence[str], chosen: dict[str, str],
               colour: str, salt: str, marker: str = "o") -> Markup:
    """Every tuning configuration's score relative to the best one, per task, in the
    optimizer's colour and marker (hollow: not near the best)."""
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
            ax.plot(ratios[ok & near], [y] * int((ok & near).sum()), marker=marker,
                    color=colour, **dots)
            ax.plot(ratios[ok & ~near], [y] * int((ok & ~near).sum()), marker=marker,
                    markerfacecolor="white", markeredgecolor=colour, markeredgewidth=1.1, **dots)
            ax.plot([fail_at] * int((~ok).sum()), [y] * int((~ok).sum()), marker="x",
                    color="#8a8f98", **dots)
            picked = (rows["config_key"] == chosen.get(task)).to_numpy()
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
