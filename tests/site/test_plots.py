"""The optimizers' styles on the site's plots: one colour and one marker per optimizer, the
same on every plot, distinct pairs for many optimizers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from suites import site_data
from suites.sitegen import plots
from suites.sitegen.format import MARKERS, optimizer_colours, optimizer_markers

NAMES = [f"optimizer-{i:02d}" for i in range(24)]


def test_twenty_four_optimizers_get_distinct_colour_and_marker_pairs():
    colours, markers = optimizer_colours(NAMES), optimizer_markers(NAMES)
    pairs = {(colours[n], markers[n]) for n in NAMES}
    assert len(pairs) == len(NAMES)
    assert set(markers.values()) == set(MARKERS) and "x" not in MARKERS  # × marks a failure
    ordered = sorted(NAMES)
    # Neighbours in the colour order (the palette's neighbours) never share a marker.
    assert all(markers[a] != markers[b] for a, b in zip(ordered, ordered[1:], strict=False))


#: Palette colours that look alike (blues, reds, oranges and browns, greens, greys,
#: purples and pinks): optimizers with these colours must not share a marker too.
LOOK_ALIKE = (("#4363d8", "#000075", "#6a5acd", "#1fa2c8"), ("#e6194b", "#800000"),
              ("#f58231", "#d2691e", "#9a6324", "#b8860b", "#808000"),
              ("#3cb44b", "#2e8b57", "#469990"), ("#a9a9a9", "#708090", "#000000"),
              ("#911eb4", "#f032e6", "#ff69b4", "#6a5acd"))


def test_look_alike_colours_get_different_markers():
    colours, markers = optimizer_colours(NAMES), optimizer_markers(NAMES)
    by_colour = {colours[n]: markers[n] for n in NAMES}
    for group in LOOK_ALIKE:
        assert len({by_colour[c] for c in group}) == len(group), group


def test_markers_follow_the_sorted_name_index_like_the_colours():
    markers = optimizer_markers(["sgd", "adam", "rmsprop", "adam"])
    assert markers == {"adam": MARKERS[0], "rmsprop": MARKERS[1], "sgd": MARKERS[2]}
    assert optimizer_markers(["adam", "rmsprop", "sgd", "zeta"])["sgd"] == markers["sgd"]


@pytest.fixture
def figures(monkeypatch) -> list:
    """The figures the plot functions draw, kept (``plots._svg`` closes them)."""
    drawn = []
    render = plots._svg

    def keep(fig, salt):
        drawn.append(fig)
        return render(fig, salt)

    monkeypatch.setattr(plots, "_svg", keep)
    return drawn


def styles(fig) -> dict[str, tuple[str, str, object]]:
    """Each labelled line of ``fig``: (colour, marker, markevery) by its label."""
    return {line.get_label(): (to_hex(line.get_color()), line.get_marker(),
                               line.get_markevery())
            for ax in fig.axes for line in ax.get_lines()
            if not line.get_label().startswith("_")}


def test_the_same_optimizer_has_the_same_style_on_every_plot(figures):
    colours = optimizer_colours(NAMES)
    markers = optimizer_markers(NAMES)
    shown = NAMES[::3]  # a subset: each plot picks its optimizers from the site's styles
    taus = np.linspace(1.0, 4.0, 60)
    profile = pd.DataFrame({n: np.clip((taus - 1) / (1 + i), 0, 1) for i, n in enumerate(shown)},
                           index=taus)
    plots.plot_profile(profile, shown, colours, markers)
    steps = np.arange(1.0, 201.0)
    bands = {n: site_data.Band(steps, np.exp(-steps / (20 + i)), np.exp(-steps / (18 + i)),
                               np.exp(-steps / (22 + i)), 3) for i, n in enumerate(shown)}
    plots.plot_bands(bands, colours, markers, ylabel="loss", scale="log", salt="bands")
    series = {"const": {n: [(d, float(d + i), d == 16) for d in (4, 8, 16)]
                        for i, n in enumerate(shown)}}
    plots.plot_scaling(series, colours, markers, xlabel="depth", ylabel="score", salt="scaling")
    points = {n: [1.0 + i, 1.1 + i, 1.2 + i] for i, n in enumerate(shown)}
    plots.plot_seed_scores(points, colours, markers, ylabel="score", higher_is_better=False,
                           salt="seeds")
    assert len(figures) == 4
    for fig in figures:
        found = styles(fig)
        assert set(found) == set(shown)
        for name, (colour, marker, _) in found.items():
            assert (colour, marker) == (colours[name], markers[name]), name
    for curves in figures[:2]:  # long curves carry markers at intervals, not on every point
        assert all(every is not None for _, _, every in styles(curves).values())
    # Without the markers given, a plot takes the site's: those of the names of the colours.
    plots.plot_profile(profile, shown, colours)
    assert styles(figures[-1]) == styles(figures[0])
