"""The count gate's verdict: two count records compared series by series.

A series *moved* when its value changed by more than the threshold (2 %) relative to
the base, or from or to zero (a spill where there was none); a series the base has and
the head lacks (its case broke, or its entry point went) is *gone*, which fails the gate
too. Wall times are printed beside the counts and never judged: on a shared CPU they
move by 10-30 % between runs of the same code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: A count that moves by more than this fraction of its base value fails the gate.
THRESHOLD = 0.02


def moved(before: float, after: float, threshold: float = THRESHOLD) -> bool:
    """Whether a count moved by more than ``threshold`` relative to ``before``."""
    if before == 0:
        return after != 0
    return abs(after / before - 1) > threshold


@dataclass(frozen=True)
class Row:
    name: str
    unit: str
    before: float | None  # None: not in the base
    after: float | None  # None: absent in the head
    status: str  # "moved", "gone", "new" or "same"
    why_absent: str = ""

    @property
    def change(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        if self.before == 0:
            return math.inf if self.after else 0.0
        return self.after / self.before - 1


def _measured_by_both(base: dict, head: dict, series: dict) -> bool:
    kind = "instructions" if series["kind"] == "instructions" else "static"
    return all(series["case"] in record["measured"].get(kind, ()) for record in (base, head))


def compare(base: dict, head: dict, threshold: float = THRESHOLD) -> list[Row]:
    """Every series of either record whose case both measured, in the head's order, then
    the base's leftovers."""
    rows = []
    names = list(head["series"]) + [n for n in base["series"] if n not in head["series"]]
    for name in names:
        if not _measured_by_both(base, head, head["series"].get(name) or base["series"][name]):
            continue
        old, new = base["series"].get(name), head["series"].get(name)
        if old is None:
            rows.append(Row(name, new["unit"], None, new["value"], "new"))
        elif new is None:
            case = old["case"]
            rows.append(Row(name, old["unit"], old["value"], None, "gone",
                            head.get("absent", {}).get(case, "not measured")))
        else:
            status = "moved" if moved(old["value"], new["value"], threshold) else "same"
            rows.append(Row(name, new["unit"], old["value"], new["value"], status))
    return rows


def failed(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.status in ("moved", "gone")]


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _change(row: Row) -> str:
    change = row.change
    if change is None:
        return row.status
    return "from 0" if math.isinf(change) else f"{change:+.2%}"


def table(rows: list[Row], base_wall: dict[str, float], head_wall: dict[str, float]) -> str:
    """The rows as aligned text, wall times (never gated) beside the instruction counts."""
    header = ("series", "unit", "base", "head", "change", "wall base", "wall head")
    lines = [header]
    for row in rows:
        case = row.name.split("/", 1)[-1] if row.name.startswith("instructions/") else ""
        walls = [f"{w[case] * 1e3:.2f} ms" if case in w else "" for w in (base_wall, head_wall)]
        lines.append((row.name, row.unit, _number(row.before), _number(row.after),
                      _change(row) + (f" ({row.why_absent})" if row.why_absent else ""),
                      *walls))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
                     .rstrip() for line in lines)
