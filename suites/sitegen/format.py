"""Names, colours, markers and number formats of the site's pages (the templates'
filters)."""

from __future__ import annotations

import colorsys
import hashlib
import math
import re
from collections.abc import Iterable
from typing import Any

from markupsafe import Markup

#: Colours of the first optimizers, by the index of the name among all of them sorted;
#: later ones get evenly spread hues (``optimizer_colours``).
PALETTE = (
    "#4363d8", "#e6194b", "#3cb44b", "#f58231", "#911eb4", "#1fa2c8", "#f032e6",
    "#469990", "#9a6324", "#800000", "#808000", "#000075", "#a9a9a9", "#000000",
    "#b8860b", "#6a5acd", "#ff69b4", "#2e8b57", "#d2691e", "#708090",
)

#: Markers of the optimizers' lines and points, by the same index as their colours
#: (``optimizer_markers``); none of them is "x", which marks a failed seed. Thirteen: the
#: palette's colours that share a marker (index i and i + 13) are far apart in hue.
MARKERS = ("o", "s", "^", "D", "v", "P", "<", ">", "p", "h", "*", "d", "H")


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
    """Colour by the index of each name among all of them, sorted: stable across pages.

    The palette's colours first; beyond it, hues spread by the golden angle at three
    lightness levels, so that every optimizer keeps a colour of its own.
    """
    ordered = sorted(set(names))
    return {n: PALETTE[i] if i < len(PALETTE) else _extra_colour(i - len(PALETTE))
            for i, n in enumerate(ordered)}


def optimizer_markers(names: Iterable[str]) -> dict[str, str]:
    """Marker by the index of each name among all of them, sorted (as ``optimizer_colours``):
    with the colour, a style of its own for every optimizer, the same on every plot."""
    return {n: MARKERS[i % len(MARKERS)] for i, n in enumerate(sorted(set(names)))}


def _extra_colour(index: int) -> str:
    hue = (index * 0.381966) % 1.0
    lightness = (0.35, 0.5, 0.65)[index % 3]
    red, green, blue = colorsys.hls_to_rgb(hue, lightness, 0.75)
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in (red, green, blue)))



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


def fmt_signed(value: Any) -> str:
    """A change of rank with its sign: "+2", "−5" (a minus sign), "0"."""
    if value is None or not math.isfinite(float(value)):
        return "—"
    value = int(value)
    return f"+{value}" if value > 0 else (f"−{-value}" if value < 0 else "0")


def fmt_percent(value: Any) -> str:
    if value is None or not math.isfinite(float(value)):
        return "—"
    percent = 100 * float(value)
    return f"{percent:.1f}%" if 0 < abs(percent) < 10 else f"{percent:.0f}%"


def fmt_times(value: Any) -> str:
    if value is None or not math.isfinite(float(value)):
        return "—"
    return f"{float(value):.2f}×"


def fmt_window(value: Any, found: bool = True) -> str:
    """A step-size window as a factor: "×8"; "none" when no multiplier was near best on
    every seed; "n/a" without a measurement (no ``lr_key``, runs missing)."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    return f"×{float(value):.3g}" if found else "none"


def fmt_interval(value: Any, low: Any, high: Any, digits: int = 3) -> str:
    """A score with half its bootstrap interval's width: "0.530 ± 0.061"."""
    if value is None or not math.isfinite(float(value)):
        return "—"
    if low is None or high is None or not math.isfinite(float(high) - float(low)):
        return fmt_fixed(value, digits)
    half = (float(high) - float(low)) / 2
    return f"{float(value):.{digits}f} ± {half:.{digits}f}"


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


def quantity_label(name: str, labels: dict[str, str] | None = None) -> str:
    """An axis label for a recorded quantity: the suite's ``PLOT_LABELS`` entry, else the
    field name with spaces."""
    return (labels or {}).get(name, name.replace("_", " "))


def docstring_markup(text: str) -> Markup:
    """A docstring paragraph as HTML: escaped, with ``code`` (RST literals) as <code>."""
    escaped = str(Markup.escape(text))
    code = lambda match: f"<code>{match.group(1) or match.group(2)}</code>"
    return Markup(re.sub(r"``(.+?)``|`([^`]+)`", code, escaped))


def paragraphs(text: str) -> list[str]:
    """A docstring's paragraphs (blank-line separated), lines within joined."""
    blocks = re.split(r"\n\s*\n", text.strip())
    return [" ".join(line.strip() for line in b.splitlines()) for b in blocks if b.strip()]
