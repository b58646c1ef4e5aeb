"""The kernels page's static GPU report: ``results/kernels/static-<triton>.json`` as
written by ``python -m kernels.report`` (bytes metered under the Triton interpreter,
ahead-of-time compiles for sm_90 and sm_80), as table rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from suites.site_data.common import FileProblem

#: File names of static reports in the kernels directory (not pytest-benchmark output).
PREFIX = "static-"


def is_static_report(path: Path) -> bool:
    return path.name.startswith(PREFIX) and path.suffix == ".json"


def static_reports(kernels_dir: str | Path) -> tuple[list[dict[str, Any]], list[FileProblem]]:
    """One table per report file, newest Triton version first: per case and launched
    kernel, bytes per element against the model and the ceiling it implies, and per
    architecture registers, spills, occupancy and the widths of global accesses."""
    kernels_dir = Path(kernels_dir)
    tables, problems = [], []
    paths = sorted((p for p in kernels_dir.glob(f"{PREFIX}*.json")
                    if p.is_file() and not p.is_symlink()), reverse=True)
    for path in paths:
        relative = path.relative_to(kernels_dir.parent).as_posix()
        try:
            document = json.loads(path.read_text())
            rows = [_row(case, kernel) for case in document["cases"]
                    for kernel in case["kernels"]]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            problems.append(FileProblem(relative, f"not a static kernel report ({err})"))
            continue
        tables.append({"file": relative, "triton": str(document.get("triton", "")),
                       "archs": list(document.get("archs", [])), "rows": rows})
    return tables, problems


def _widths(counts: dict[str, int]) -> str:
    """``{"64": 5, "32": 1}`` as "5×64, 1×32" (bits per access), widest first."""
    widest_first = sorted(counts.items(), key=lambda item: -int(item[0]))
    return ", ".join(f"{n}×{bits}" for bits, n in widest_first)


def _row(case: dict[str, Any], kernel: dict[str, Any]) -> dict[str, Any]:
    compiled = {c["arch"]: c for c in kernel.get("compiled", [])}
    return {
        "case": str(case["name"]),
        "kernel": str(kernel["kernel"]).rsplit(":", 1)[-1],
        "warps": kernel.get("kwargs", {}).get("num_warps"),
        "bytes": float(case["bytes_per_element"]),
        "model": float(case["model_bytes_per_element"]),
        "target": case.get("target_bytes_per_element"),
        "ceiling": float(case["ceiling"]),
        "unit": str(case.get("unit", "element")),
        "archs": [{
            "arch": arch,
            "registers": c.get("registers"),
            "spills": int(c.get("spill_stores", 0)) + int(c.get("spill_loads", 0)),
            "occupancy": c.get("occupancy"),
            "loads": _widths(c.get("loads", {})),
            "stores": _widths(c.get("stores", {})),
        } for arch, c in sorted(compiled.items(), reverse=True)],
    }
