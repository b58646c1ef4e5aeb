"""Static GPU report of the Triton kernels, made on a CPU: bytes moved and sm_90/sm_80 compiles.

``python -m kernels.report`` (``make kernel-report``) writes
``results/kernels/static-<triton version>.json``. For every case that a kernel family
registers it

1. runs the case under the Triton interpreter with a :class:`~kernels.report.meter.TrafficMeter`
   active: every ``tl.load`` / ``tl.store`` is counted in bytes (masked-off lanes
   excluded, a re-read counted again), and every kernel launch is recorded with its
   arguments' dtypes, constexprs, ``num_warps`` and ``num_stages``;
2. compiles each launched configuration ahead of time for sm_90 and sm_80
   (:mod:`kernels.report.compile`: ``triton.compiler.ASTSource``, the ptxas shipped in the
   Triton wheel, no driver), recording registers, spills, shared memory, theoretical
   occupancy and the width of every global load and store in the SASS.

How a kernel family plugs in
----------------------------
A family is a package under ``kernels`` (``kernels.scan``, ``kernels.optim``) with a
module ``report_cases`` (``kernels/<family>/report_cases.py``) defining::

    def report_cases() -> list[kernels.report.ReportCase]: ...

Each :class:`ReportCase` names one kernel configuration at a benchmark size:

- ``name``: unique, e.g. ``"scan_fwd 16x4096x512"``; ``family``: ``"scan"``, ``"optim"``.
- ``elements``: the count that bytes are divided by, for the shape that ``run`` meters
  (complex elements of ``b`` for the scan, parameters for an optimizer step).
- ``unit``: what one element is, e.g. ``"complex64 element"``, ``"fp32 parameter"``.
- ``model_bytes_per_element``: the bytes the torch-free traffic model says the kernel
  must move per element (``kernels/<family>/traffic.py``).
- ``run``: a callable with no arguments that builds CPU inputs and calls the family's
  launcher once (the same Python launcher the library uses, so the launch
  configurations are the library's). It runs under ``TRITON_INTERPRET=1``; keep the
  metered shape small enough for the interpreter (seconds, not minutes). Where the
  launcher picks its configuration from the problem size, let the case pass the
  benchmark size's configuration and meter a slice of it, and say so in ``note``.
- ``target_bytes_per_element`` (optional): the goal that tests assert; ``note``
  (optional): one line on how the case was metered.
- ``bench_run`` (optional): calls the same launcher at the benchmark size itself, on
  meta tensors; its launches are recorded without running (``TrafficMeter(dry=True)``)
  and they, not the metered slice's, are compiled, so registers, occupancy and grid are
  the benchmark configuration's own (a slice can specialize differently: a channel-block
  count of 1 is a constant to the compiler). Every metered kernel configuration must be
  launched there too, and the other way round.
- ``stage_elements`` (optional): elements one program loads per pipeline stage, from a
  launch's keyword arguments (e.g. ``BLOCK_T * BLOCK_N``); with it the report gives the
  bytes in flight per SM (:func:`kernels.report.compile.in_flight`).

The report does not import Triton kernels itself: it only calls ``run``. A family
without a ``report_cases`` module is left out of the report.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

#: The kernel families asked for report cases, in report order.
FAMILIES = ("scan", "optim")


@dataclass(frozen=True)
class ReportCase:
    """One kernel configuration of a family, metered by calling ``run`` (see the module doc)."""

    name: str
    family: str
    elements: int
    unit: str
    model_bytes_per_element: float
    run: Callable[[], object]
    target_bytes_per_element: float | None = None
    note: str = ""
    bench_run: Callable[[], object] | None = None
    stage_elements: Callable[[dict], int] | None = None


def collect_cases(families: tuple[str, ...] = FAMILIES) -> list[ReportCase]:
    """Every family's ``report_cases()``; families without the module are skipped."""
    cases: list[ReportCase] = []
    for family in families:
        module_name = f"kernels.{family}.report_cases"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name not in (module_name, f"kernels.{family}"):
                raise
            continue
        cases.extend(module.report_cases())
    names = [case.name for case in cases]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"report case names must be unique, repeated: {duplicates}")
    return cases


__all__ = ["FAMILIES", "ReportCase", "collect_cases"]
