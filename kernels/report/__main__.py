"""``python -m kernels.report``: the static GPU report, written to
``results/kernels/static-<triton version>.json`` and printed as a table.

Runs every registered case under the Triton interpreter (set here when not already set:
this command is meant for machines without a GPU) and compiles what it launched for
sm_90 and sm_80. See :mod:`kernels.report` for what is measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from kernels.report.compile import ARCHS, compile_launches, in_flight
from kernels.report.meter import TrafficMeter


def _matching(group: dict, recorded: list) -> dict:
    """The benchmark-size launch with the group's kernel and keyword arguments."""
    same = {json.dumps(r.args): r for r in recorded
            if r.kernel == group["kernel"] and r.kwargs == group["kwargs"]}
    if len(same) != 1:
        found = "none" if not same else f"{len(same)} with different arguments"
        raise RuntimeError(f"the benchmark size launches {found} of {group['kernel']} with "
                           f"{group['kwargs']}, which the metered slice launched")
    return next(iter(same.values()))


def _bench_launches(case, groups: list[dict]) -> None:
    """Replaces each group's arguments and grid by the benchmark size's own launch."""
    with TrafficMeter(dry=True) as recorder:
        case.bench_run()
    for group in groups:
        bench = _matching(group, recorder.launches)
        group["args"], group["grid"] = bench.args, bench.grid
        group["metered_grid"] = group.pop("slice_grid")
    unmatched = [(r.kernel, r.kwargs) for r in recorder.launches
                 if not any(g["kernel"] == r.kernel and g["kwargs"] == r.kwargs for g in groups)]
    if unmatched:
        raise RuntimeError(f"the metered slice does not launch {unmatched}, which the "
                           "benchmark size does")


def meter_case(case) -> dict:
    """Bytes per element of one case and its launches, grouped by configuration."""
    with TrafficMeter() as meter:
        case.run()
    groups: dict[tuple, dict] = {}
    for launch in meter.launches:
        group = groups.setdefault(launch.config, {
            "kernel": launch.kernel, "args": launch.args, "kwargs": launch.kwargs,
            "grid": launch.grid, "slice_grid": launch.grid, "launches": 0,
            "bytes_per_element": 0.0, "loaded_per_element": 0.0,
            "sector_bytes_per_element": 0.0})
        group["launches"] += 1
        moved = launch.loaded + launch.stored + launch.atomic
        group["bytes_per_element"] += moved / case.elements
        group["loaded_per_element"] += launch.loaded / case.elements
        sectors = launch.sector_loaded + launch.sector_stored + launch.atomic
        group["sector_bytes_per_element"] += sectors / case.elements
    kernels = list(groups.values())
    if case.bench_run is not None:
        _bench_launches(case, kernels)
    for kernel in kernels:
        kernel.pop("slice_grid", None)
        if case.stage_elements is not None:
            kernel["stage_bytes"] = kernel["loaded_per_element"] * case.stage_elements(
                kernel["kwargs"])
    measured = meter.total / case.elements
    return {
        "name": case.name,
        "family": case.family,
        "unit": case.unit,
        "elements": case.elements,
        "note": case.note,
        "model_bytes_per_element": case.model_bytes_per_element,
        "target_bytes_per_element": case.target_bytes_per_element,
        "bytes_per_element": measured,
        "loaded_per_element": meter.loaded / case.elements,
        "stored_per_element": meter.stored / case.elements,
        "atomic_per_element": meter.atomic / case.elements,
        # Bytes of the 32-byte sectors the accesses touch: what DRAM moves.
        "sector_bytes_per_element": meter.sector_total / case.elements,
        # The fraction of peak bandwidth the kernel can reach at best: only the model's
        # bytes are useful work.
        "ceiling": case.model_bytes_per_element / measured if measured else None,
        "kernels": kernels,
    }


def _key(kernel: dict) -> str:
    return json.dumps([kernel["kernel"], kernel["args"], kernel["kwargs"]], sort_keys=True)


def build_report(cases, archs: tuple[int, ...] = ARCHS) -> dict:
    """Meters every case, then compiles each distinct launch configuration once per arch
    (the benchmark size's own launches where a case records them)."""
    import triton

    rows = [meter_case(case) for case in cases]
    distinct: dict[str, dict] = {}
    for row in rows:
        for kernel in row["kernels"]:
            distinct.setdefault(_key(kernel), kernel)
    compiled = compile_launches(
        [{k: v[k] for k in ("kernel", "args", "kwargs")} for v in distinct.values()], archs)
    by_key = dict(zip(distinct, compiled, strict=True))
    for row in rows:
        for kernel in row["kernels"]:
            kernel["compiled"] = [dict(c) for c in by_key[_key(kernel)]]
            if "stage_bytes" in kernel:
                programs = math.prod(kernel["grid"])
                for c in kernel["compiled"]:
                    c.update(in_flight(int(c["arch"].removeprefix("sm_")), c, programs,
                                       kernel["stage_bytes"]))
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "triton": triton.__version__,
        "archs": [f"sm_{a}" for a in archs],
        "cases": rows,
    }


def _widths(table: dict) -> str:
    return " ".join(f"{n}x{bits}" for bits, n in sorted(table.items(), key=lambda kv: -int(kv[0])))


def format_table(report: dict) -> str:
    lines = [f"static report, triton {report['triton']} (bytes per element: measured / model, "
             "and in 32-byte sectors; occupancy and bytes in flight on each arch)",
             f"{'case':34s} {'B/el':>6s} {'model':>6s} {'sect':>6s} {'ceil':>5s}  "
             f"{'kernel':36s} {'arch':5s} {'warps':>5s} {'stg':>3s} {'regs':>4s} {'spill':>5s} "
             f"{'smem':>6s} {'occ':>5s} {'KB/SM':>6s}  loads | stores | async"]
    for row in report["cases"]:
        first = True
        for kernel in row["kernels"]:
            for c in kernel["compiled"]:
                head = (f"{row['name']:34s} {row['bytes_per_element']:6.2f} "
                        f"{row['model_bytes_per_element']:6.1f} "
                        f"{row['sector_bytes_per_element']:6.2f} {row['ceiling']:5.2f}" if first
                        else " " * 61)
                first = False
                flags = [k for k, v in kernel["kwargs"].items() if v is True]
                name = kernel["kernel"].split(":")[1] + (f"[{','.join(flags)}]" if flags else "")
                flight = c.get("bytes_in_flight_per_sm")
                flight = f"{flight / 1024:6.1f}" if flight is not None else f"{'-':>6s}"
                lines.append(
                    f"{head}  {name:36s} {c['arch']:5s} {c['num_warps']:5d} {c['num_stages']:3d} "
                    f"{c['registers']:4d} {c['spill_stores'] + c['spill_loads']:5d} "
                    f"{c['shared_bytes']:6d} {c['occupancy']:5.1%} {flight}  "
                    f"{_widths(c['loads'])} | {_widths(c['stores'])} | "
                    f"{_widths(c.get('async_copy_bits', {}))}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernels.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default: results/kernels/static-<triton version>.json)")
    parser.add_argument("--cases", nargs="+", default=None, metavar="NAME",
                        help="only the cases whose name starts with one of these")
    args = parser.parse_args(argv)
    os.environ.setdefault("TRITON_INTERPRET", "1")
    from kernels.report import collect_cases

    cases = collect_cases()
    if args.cases:
        cases = [c for c in cases if any(c.name.startswith(p) for p in args.cases)]
        if not cases:
            parser.error(f"no report case starts with {args.cases}")
    report = build_report(cases)
    print(format_table(report))
    out = args.out or Path("results") / "kernels" / f"static-{report['triton']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
