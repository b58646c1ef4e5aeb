"""The kernels page's one-run tables: pytest-benchmark JSON files (``results/kernels/``) as one
frame, and its tables."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from suites.results import walk_files
from suites.site_data.common import FileProblem, natural_key
from suites.site_data.kernels.static_report import is_static_report

#: Names of the fused implementations on the kernels page.
FUSED_IMPLS = ("triton",)

KERNEL_COLUMNS = [
    "file", "machine", "device", "run_date", "commit", "kernel", "size", "impl", "time_s",
    "rounds", "bytes", "gbps", "peak_gbps", "peak_fraction", "reference", "speedup",
]


def kernel_frame(kernels_dir: str | Path) -> tuple[pd.DataFrame, list[FileProblem]]:
    """One row per benchmark in ``kernels_dir/*.json`` (pytest-benchmark ``--benchmark-json``).

    ``time_s`` is the median time; ``gbps`` the achieved bandwidth (recorded, else
    ``bytes / time``); ``peak_fraction`` where the peak is known; ``speedup`` the
    reference implementation's time over this one's, for the same kernel, size, machine
    and file. ``file`` is relative to the results directory (``kernels/<name>.json``).
    """
    kernels_dir = Path(kernels_dir)
    rows: list[dict[str, Any]] = []
    problems: list[FileProblem] = []
    for path, problem in walk_files(kernels_dir, recursive=False):
        if is_static_report(path):  # the static GPU report: site_data.static_report
            continue
        relative = path.relative_to(kernels_dir.parent).as_posix()  # kernels/<name>.json
        if problem is not None:  # a symbolic link or an oversized file: not read, not copied
            problems.append(FileProblem(relative, problem, copied=False))
            continue
        try:
            document = json.loads(path.read_text())
            benchmarks = document["benchmarks"]
            if not isinstance(benchmarks, list):
                raise TypeError("'benchmarks' is not a list")
            machine = _machine_name(document.get("machine_info") or {})
            commit = (document.get("commit_info") or {}).get("id") or ""
            for bench in benchmarks:
                rows.append(_kernel_row(bench, relative, machine, str(commit)[:12],
                                        str(document.get("datetime") or "")[:10]))
        except OSError as err:  # its strerror: the message would hold the absolute path
            problems.append(FileProblem(relative, f"not readable ({err.strerror})",
                                        copied=False))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            problems.append(FileProblem(relative, f"not readable as JSON ({err})"))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            problems.append(FileProblem(
                relative, f"not pytest-benchmark output ({type(err).__name__}: {err})"))
    frame = pd.DataFrame(rows, columns=KERNEL_COLUMNS)
    if frame.empty:
        return frame, problems
    keys = ["file", "device", "kernel", "size"]
    ref_time = frame[frame["impl"] == frame["reference"]].set_index(keys + ["impl"])["time_s"]
    ref_time = ref_time[~ref_time.index.duplicated()]
    lookup = list(zip(*(frame[k] for k in keys), frame["reference"], strict=True))
    reference = pd.Series([ref_time.get(k, math.nan) for k in lookup], index=frame.index)
    frame["speedup"] = reference / frame["time_s"]
    frame = frame.sort_values(
        ["file", "device", "kernel", "size", "impl"],
        key=lambda column: column.map(lambda v: tuple(natural_key(v)))
        if column.name == "size" else column,
    )
    return frame.reset_index(drop=True), problems


def kernel_tables(kernels: pd.DataFrame) -> list[dict[str, Any]]:
    """The kernels page's tables: one per (benchmark file, device), rows by kernel and size.

    Each table: ``file``, ``device``, ``machine``, ``run_date``, ``commit`` and ``rows``
    (dicts with kernel, size, impl, time_s, gbps, peak_fraction, speedup, reference,
    fused, is_reference). Plain data, no plotting: ``lsb show --kernels`` prints them.
    """
    tables = []
    for (file, device), group in kernels.groupby(["file", "device"], sort=False):
        rows = group.to_dict("records")
        for row in rows:
            row["fused"] = row["impl"] in FUSED_IMPLS
            row["is_reference"] = row["impl"] == row["reference"]
        first = rows[0]
        tables.append({"file": file, "device": device, "machine": first["machine"],
                       "run_date": first["run_date"], "commit": first["commit"], "rows": rows})
    return tables


def _machine_name(info: dict[str, Any]) -> str:
    cpu = info.get("cpu") or {}
    brand = cpu.get("brand_raw") or info.get("processor") or info.get("machine") or ""
    node = info.get("node") or ""
    return " · ".join(part for part in (node, brand) if part) or "unknown machine"


def _kernel_row(bench: dict[str, Any], file: str, machine: str, commit: str,
                date: str) -> dict[str, Any]:
    extra = bench.get("extra_info") or {}
    stats = bench["stats"]
    params = bench.get("params") or {}
    name = str(bench.get("name", ""))
    kernel = str(extra.get("kernel") or bench.get("group") or name.split("[", 1)[0])
    impl = str(extra.get("impl") or params.get("impl") or params.get("backend") or name)
    size = extra.get("size")
    size = "×".join(str(s) for s in size) if isinstance(size, list) else str(
        extra.get("case") or params.get("size") or "")
    seconds = float(stats["median"])
    moved = extra.get("bytes")
    gbps = extra.get("gbps")
    if gbps is None and moved and seconds > 0:
        gbps = float(moved) / seconds / 1e9
    peak = extra.get("peak_gbps")
    fraction = extra.get("peak_fraction")
    if fraction is None and gbps is not None and peak:
        fraction = float(gbps) / float(peak)
    return {
        "file": file,
        "machine": machine,
        "device": str(extra.get("device") or machine),
        "run_date": date,
        "commit": commit,
        "kernel": kernel,
        "size": size,
        "impl": impl,
        "time_s": seconds,
        "rounds": int(stats.get("rounds") or 0),
        "bytes": int(moved) if moved else None,
        "gbps": _float_or_nan(gbps),
        "peak_gbps": _float_or_nan(peak),
        "peak_fraction": _float_or_nan(fraction),
        # The implementation this kernel's speedups are quoted against (bench/cases.py).
        "reference": str(extra.get("reference") or ""),
        "speedup": math.nan,
    }


def _float_or_nan(value: Any) -> float:
    return math.nan if value is None else float(value)
