"""The Triton kernels' deterministic figures for the count gate, made without a GPU by the
measured commit's own ``kernels.report``: bytes per element (its traffic meter, under the
Triton interpreter) and the sm_90/sm_80 compile of every launch (registers, spills, shared
memory, occupancy, global accesses).

``python -m bench.static_figures --out FILE`` is the measuring process (run with the
measured ``kernels`` first on the path): it meters ``bench.cases.STATIC_CASES`` in a pool
of processes (the interpreter is the slow part), compiles each distinct launch once, and
writes the report's JSON (``kernels.report``'s format). ``figures(report)`` turns such a
report into the gate's series, one per case and figure (per architecture for the compile):
a case that launches several kernels has their registers' and shared memory's maximum,
occupancy's minimum, spills and accesses summed, and the mean width of all accesses.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
from pathlib import Path

#: Compile figures per case and architecture, and their units.
COMPILE_UNITS = {
    "registers": "registers per thread",
    "spill_bytes": "bytes",
    "shared_bytes": "bytes",
    "occupancy": "fraction of the SM's warps",
    "global_loads": "load instructions",
    "global_stores": "store instructions",
    "load_bits": "bits per load instruction",
    "store_bits": "bits per store instruction",
}
BYTES_FIGURE = "bytes_per_element"


def _accesses(widths: dict[str, int]) -> tuple[int, int]:
    """(instructions, bits) of ``{"128": 7, "32": 4}`` (instructions by width in bits)."""
    return sum(widths.values()), sum(int(bits) * n for bits, n in widths.items())


def _mean_bits(accesses: list[tuple[int, int]]) -> float:
    count = sum(n for n, _ in accesses)
    return sum(bits for _, bits in accesses) / count if count else 0.0


def compile_figures(compiled: list[dict]) -> dict[str, float]:
    """One case's figures on one architecture, over the kernels it launches."""
    loads = [_accesses(c["loads"]) for c in compiled]
    stores = [_accesses(c["stores"]) for c in compiled]
    return {
        "registers": max(c["registers"] for c in compiled),
        "spill_bytes": sum(c["spill_stores"] + c["spill_loads"] for c in compiled),
        "shared_bytes": max(c["shared_bytes"] for c in compiled),
        "occupancy": min(c["occupancy"] for c in compiled),
        "global_loads": sum(n for n, _ in loads),
        "global_stores": sum(n for n, _ in stores),
        "load_bits": _mean_bits(loads),
        "store_bits": _mean_bits(stores),
    }


def figures(report: dict) -> list[dict]:
    """The gate's series of a ``kernels.report`` report: ``{"figure", "case", "arch",
    "unit", "value"}`` (``arch`` None for bytes per element)."""
    series = []
    for case in report["cases"]:
        series.append({"figure": BYTES_FIGURE, "case": case["name"], "arch": None,
                       "unit": f"bytes per {case.get('unit', 'element')}",
                       "value": float(case["bytes_per_element"])})
        by_arch: dict[str, list[dict]] = {}
        for kernel in case["kernels"]:
            for compiled in kernel.get("compiled", []):
                by_arch.setdefault(compiled["arch"], []).append(compiled)
        for arch, compiled in sorted(by_arch.items(), reverse=True):
            for name, value in compile_figures(compiled).items():
                series.append({"figure": name, "case": case["name"], "arch": arch,
                               "unit": COMPILE_UNITS[name], "value": float(value)})
    return series


def _meter(name: str) -> dict:
    from kernels.report import __main__ as report
    from kernels.report import collect_cases

    (case,) = [c for c in collect_cases() if c.name == name]
    return report.meter_case(case)


def build_report(names: list[str], processes: int) -> dict:
    """The measured commit's report of the cases ``names`` that it has (``absent``: the
    others), metered in ``processes`` processes, each distinct launch compiled once."""
    import triton

    from kernels.report import collect_cases
    from kernels.report.compile import ARCHS, compile_launches

    present = [c.name for c in collect_cases()]
    wanted = [n for n in names if n in present]
    # fork: the children inherit TRITON_INTERPRET and the imported interpreter.
    with multiprocessing.get_context("fork").Pool(max(1, processes)) as pool:
        rows = pool.map(_meter, wanted, chunksize=1)
    distinct: dict[str, dict] = {}
    for row in rows:
        for kernel in row["kernels"]:
            distinct.setdefault(_launch_key(kernel), kernel)
    compiled = compile_launches(
        [{k: v[k] for k in ("kernel", "args", "kwargs")} for v in distinct.values()], ARCHS)
    by_key = dict(zip(distinct, compiled, strict=True))
    for row in rows:
        for kernel in row["kernels"]:
            kernel["compiled"] = by_key[_launch_key(kernel)]
    absent = {n: "the commit's kernels.report has no such case" for n in names
              if n not in present}
    return {"triton": triton.__version__, "archs": [f"sm_{a}" for a in ARCHS], "cases": rows,
            "absent": absent}


def _launch_key(kernel: dict) -> str:
    return json.dumps([kernel["kernel"], kernel["args"], kernel["kwargs"]], sort_keys=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.static_figures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the report as JSON")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("cases", nargs="*", help="report case names (default: STATIC_CASES)")
    args = parser.parse_args(argv)
    os.environ["TRITON_INTERPRET"] = "1"
    from bench import cases

    names = args.cases or list(cases.STATIC_CASES)
    try:
        report = build_report(names, args.processes)
    except ImportError as err:  # a commit older than kernels.report
        report = {"cases": [], "absent": dict.fromkeys(names, f"no static report ({err})")}
    args.out.write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
