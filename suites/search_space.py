"""Search spaces: a submission's ``search_space`` expanded into the configurations that
the tuning protocol runs.

A value is either a non-empty list of choices or a range ``{"min", "max", "scale"}``;
lists form a grid, ranges are sampled evenly (geometrically for ``"log"``) so that the
whole grid holds at most ``max_configs`` configurations.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from suites.api import MAX_CONFIGS

RANGE_SCALES = ("log", "linear")



def expand_search_space(space: Mapping[str, Any], max_configs: int = MAX_CONFIGS) -> list[dict]:
    """All configurations of a search space, in a deterministic order.

    A value is either a non-empty list of choices or a range
    ``{"min": a, "max": b, "scale": "log" | "linear"}``. Lists form a grid (cartesian
    product, keys in sorted order). Ranges are sampled at ``k`` evenly spaced points
    including both ends (geometrically spaced for ``"log"``; one point, the midpoint,
    when ``k == 1``), with ``k`` the largest number for which the whole grid holds at
    most ``max_configs`` configurations. Raises ``ValueError`` when the space is empty,
    malformed, or its grid alone exceeds ``max_configs``.
    """
    if not isinstance(space, Mapping) or not space:
        raise ValueError(
            "search_space is empty: give at least one hyperparameter, "
            'e.g. search_space = {"lr": [1e-3, 1e-2]}'
        )
    choices: dict[str, list] = {}
    ranges: dict[str, tuple[float, float, str]] = {}
    for key in sorted(space):
        value = space[key]
        if not isinstance(key, str):
            raise ValueError(f"search_space key {key!r} is not a string: name hyperparameters")
        if isinstance(value, list):
            if not value:
                raise ValueError(f"search_space[{key!r}] is an empty list: give at least one value")
            for choice in value:
                check_value(key, choice)
            choices[key] = value
        elif isinstance(value, Mapping):
            ranges[key] = _parse_range(key, value)
        else:
            raise ValueError(
                f"search_space[{key!r}] = {value!r} is neither a list of choices nor a range: "
                f"write a fixed value as a one-element list, [{value!r}], or a range as "
                '{"min": ..., "max": ..., "scale": "log"}'
            )
    grid_size = math.prod(len(v) for v in choices.values())
    if grid_size > max_configs:
        raise ValueError(
            f"search_space has {grid_size} configurations, more than the allowed {max_configs}: "
            f"shrink the grid, or set max_configs = {grid_size} in the file if the sweep "
            "is worth its cost"
        )
    points_per_range = 1
    while ranges and grid_size * (points_per_range + 1) ** len(ranges) <= max_configs:
        points_per_range += 1
    axes = dict(choices)
    for key, (low, high, scale) in ranges.items():
        axes[key] = _range_points(low, high, scale, points_per_range)
    keys = sorted(axes)
    grid = itertools.product(*(axes[k] for k in keys))
    return [dict(zip(keys, values, strict=True)) for values in grid]


#: What a hyperparameter's value may be: it is stored as JSON and keys the run.
SCALARS = (bool, int, float, str, type(None))


def check_value(key: str, value: Any) -> None:
    """``ValueError`` unless ``value`` is a number, string, boolean, None, or a list (or
    tuple) of those: every configuration is written to JSON and hashed into run keys."""
    if isinstance(value, SCALARS):
        return
    if isinstance(value, (list, tuple)) and all(isinstance(v, SCALARS) for v in value):
        return
    raise ValueError(
        f"search_space[{key!r}] holds {value!r} ({type(value).__name__}): a value must be a "
        "number, string, boolean, None or a list of them, since configurations are stored "
        "as JSON. Build objects such as functions or tensors inside build() from a plain "
        "value, e.g. a string that names them"
    )


def _parse_range(key: str, spec: Mapping[str, Any]) -> tuple[float, float, str]:
    unknown = set(spec) - {"min", "max", "scale"}
    if unknown or "min" not in spec or "max" not in spec:
        raise ValueError(
            f"search_space[{key!r}] = {dict(spec)!r} is not a range: write "
            '{"min": low, "max": high, "scale": "log" or "linear"}'
        )
    low, high, scale = spec["min"], spec["max"], spec.get("scale", "linear")
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (low, high))
    if not numbers or not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise ValueError(
            f"search_space[{key!r}]: need finite numbers with min < max, got min={low!r}, "
            f"max={high!r}"
        )
    if scale not in RANGE_SCALES:
        raise ValueError(
            f"search_space[{key!r}]: scale must be one of {RANGE_SCALES}, got {scale!r}"
        )
    if scale == "log" and low <= 0:
        raise ValueError(
            f"search_space[{key!r}]: a log range needs min > 0, got {low!r}: "
            'raise min or use "scale": "linear"'
        )
    return float(low), float(high), scale


def _range_points(low: float, high: float, scale: str, count: int) -> list[float]:
    spaced = np.geomspace if scale == "log" else np.linspace
    # One point is the range's midpoint; more points include both ends.
    points = spaced(low, high, 3)[1:2] if count == 1 else spaced(low, high, count)
    # Six significant digits keep configs readable and their JSON (hence run keys) stable.
    return [float(f"{x:.6g}") for x in points]
