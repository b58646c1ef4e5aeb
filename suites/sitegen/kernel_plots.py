"""The kernels page's plots across commits: the count gate's series, and wall-clock timings.

Both put commits on x in history order. In the count plots, each commit's column carries
the commit's subject as an SVG ``<title>`` (the browser shows it on hover), and each
series' first bad commit is ringed.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from markupsafe import Markup

from suites.site_data.common import natural_key
from suites.site_data.kernels import CountHistory, Timings
from suites.site_data.kernels.timings import short
from suites.sitegen.plots import IMPL_COLOURS, PLOT_STYLE, _svg, plt

#: Lines per count plot beyond which the legend is left out (the table names them).
LEGEND_LINES = 16


def _commit_axis(ax, labels: Sequence[str]) -> None:
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7.5)
    ax.set_xlim(-0.5, len(labels) - 0.5)


def _with_titles(svg: Markup, titles: dict[str, str]) -> Markup:
    """``svg`` with a ``<title>`` inside each group whose id is a key of ``titles``."""
    def add(match: re.Match) -> str:
        return f"{match.group(0)}<title>{html.escape(titles[match.group(1)])}</title>"

    ids = "|".join(map(re.escape, titles))
    pattern = f'<g id="({ids})"[^>]*>'
    return Markup(re.sub(pattern, add, str(svg)))


def plot_counts(history: CountHistory, figure: str, salt: str) -> Markup | None:
    """One figure's series (one line per case), each divided by its first nonzero value (a
    series that is zero throughout lies at 0), with each first bad commit ringed; hovering
    a commit's column shows its subject."""
    chosen = [s for s in history.series if s.figure == figure]
    if not chosen or not history.commits:
        return None
    labels = [short(c.commit) for c in history.commits]
    with plt.rc_context(PLOT_STYLE):
        width = max(6.0, 0.22 * len(labels) + 3.5)
        fig, ax = plt.subplots(figsize=(width, 3.3))
        fig.subplots_adjust(left=0.9 / width, right=1 - 2.6 / width, bottom=0.95 / 3.3,
                            top=1 - 0.35 / 3.3)
        titles = {}
        for index, commit in enumerate(history.commits):
            gid = f"{salt}-commit-{index}"
            subject = commit.subject + (f" (figures of {short(commit.measured_commit)}, the "
                                        "same kernels/ tree)" if commit.measured_commit else "")
            titles[gid] = f"{short(commit.commit)} {subject}"
            ax.axvspan(index - 0.5, index + 0.5, color="#ffffff", alpha=0.0, zorder=0, gid=gid)
        for number, s in enumerate(chosen):
            base = next((v for v in s.values if v), 1.0)
            points = [(i, v / base) for i, v in enumerate(s.values) if v is not None]
            colour = IMPL_COLOURS[number % len(IMPL_COLOURS)]
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, color=colour,
                    label=s.case, zorder=2)
            if s.first_bad is not None:
                y = dict(points)[s.first_bad]
                ax.plot([s.first_bad], [y], marker="o", markersize=10, markerfacecolor="none",
                        markeredgecolor="#d62728", markeredgewidth=1.6, linestyle="none",
                        zorder=3)
        ax.set_title(figure)
        ax.set_ylabel("÷ first nonzero value")
        _commit_axis(ax, labels)
        if len(chosen) <= LEGEND_LINES:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
                      fontsize=7.5)
        return _with_titles(_svg(fig, salt), titles)


def plot_timings(timings: Timings, benchmark: str, salt: str) -> Markup | None:
    """Median seconds of ``benchmark`` over commits: a panel per size, a line per
    implementation, machine and harness; None when it has no points."""
    points = [p for p in timings.points if p.benchmark == benchmark]
    if not points:
        return None
    commits = timings.commits
    x_of = {c: i for i, c in enumerate(commits)}
    sizes = sorted({p.size for p in points}, key=natural_key)
    lines = sorted({(p.impl, p.machine, p.source) for p in points})
    colour = {line: IMPL_COLOURS[i % len(IMPL_COLOURS)] for i, line in enumerate(lines)}
    with plt.rc_context(PLOT_STYLE):
        width = max(4.0, 0.35 * len(commits) + 1.5)
        fig, axes = plt.subplots(1, len(sizes), figsize=(width * len(sizes) + 1.8, 2.9),
                                 squeeze=False)
        fig.subplots_adjust(left=0.9 / fig.get_figwidth(), right=1 - 1.9 / fig.get_figwidth(),
                            bottom=0.95 / 2.9, top=1 - 0.3 / 2.9, wspace=0.3)
        for ax, size in zip(axes[0], sizes, strict=True):
            for line in lines:
                series = sorted((x_of[p.commit], p.seconds) for p in points
                                if (p.size, p.impl, p.machine, p.source) == (size, *line))
                if series:
                    xs, ys = zip(*series, strict=True)
                    ax.plot(xs, ys, marker="o", markersize=3.5, linewidth=1.3,
                            color=colour[line], label=f"{line[0]} · {line[1]} · {line[2]}")
            ax.set_yscale("log")
            ax.set_title(f"{benchmark} {size}")
            _commit_axis(ax, [short(c) for c in commits])
            ax.set_ylabel("median seconds")
        handles, labels = {}, []
        for ax in axes[0]:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                if label not in handles:
                    handles[label] = handle
                    labels.append(label)
        axes[0][-1].legend([handles[lb] for lb in labels], labels, loc="upper left",
                           bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8)
        return _svg(fig, salt)
