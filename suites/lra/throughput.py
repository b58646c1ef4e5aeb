"""Training steps per second of the LRA tasks under each scan backend (thesis Table 8).

``python -m suites.lra.throughput`` times AdamW training steps of each task's model at a
budget's scale (``quick`` by default) with the scan's sequential oracle, the chunked
scan, and Triton when a GPU is present, on the device the tasks train on
(``$LSB_DEVICE``, else CUDA when present). Only the scan changes from row to row: every
row takes the same optimizer step (``kernels.optim.AdamW`` with the backend that
``auto`` resolves to on the device, resolved once; ``--optimizer-backend`` picks it).
The steps are the runner's: the task's own problem, batches and parameter groups. It
prints a table and writes ``results/throughput/<machine>.json`` (``--out``). Table 8 of
the thesis is the reference for the full configurations: LRU training steps/s on an A100.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from kernels.machine import device_name, machine_label, synchronize
from kernels.optim import AdamW
from kernels.optim.backend import resolve_backend as resolve_optimizer_backend
from kernels.scan import ENV_VAR as SCAN_ENV_VAR
from suites import registry
from suites.atomic import atomic_open
from suites.lra.problem import default_device
from suites.training import environment, optimizer_param_groups, warm_up

#: Thesis Table 8: LRU training steps/s on an A100 at the full (Table 9) configurations.
TABLE_8_A100 = {
    "lra/image": 15.9, "lra/listops": 2.1, "lra/text": 14.7, "lra/retrieval": 5.7,
    "lra/pathfinder": 15.5, "lra/pathx": 2.4,
}
DEFAULT_TASKS = ("lra/listops", "lra/pathfinder")


def backends_here(device: torch.device) -> list[str]:
    """The scan backends worth timing on ``device``: Triton only on a GPU (the
    interpreter that runs it on a CPU is a correctness tool, not a speed)."""
    return ["sequential", "chunked"] + (["triton"] if device.type == "cuda" else [])


def optimizer_backend_for(device: torch.device) -> str:
    """The optimizer backend that ``auto`` resolves to for parameters on ``device``."""
    return resolve_optimizer_backend("auto", [torch.empty(0, device=device)])


def steps_per_second(
    task, budget: str, backend: str, steps: int, warmup: int, optimizer_backend: str = "torch"
) -> float:
    """AdamW steps/s of ``task``'s problem at ``budget`` with the scan ``backend`` and the
    optimizer step ``optimizer_backend`` (``torch`` or ``triton``)."""
    previous = os.environ.get(SCAN_ENV_VAR)
    os.environ[SCAN_ENV_VAR] = backend
    try:
        torch.manual_seed(0)
        problem = task.setup(0, budget)
        groups = optimizer_param_groups(problem.param_groups, {"lr": 1e-3}, "lr")
        optimizer = AdamW(groups, lr=1e-3, backend=optimizer_backend)
        device = next(p for g in groups for p in g["params"]).device

        def step(k: int) -> None:
            optimizer.zero_grad(set_to_none=True)
            problem.loss(k % problem.steps).backward()
            optimizer.step()

        for k in range(warmup):
            step(k)
        synchronize(device)
        start = time.perf_counter()
        for k in range(warmup, warmup + steps):
            step(k)
        synchronize(device)
        return steps / (time.perf_counter() - start)
    finally:
        if previous is None:
            os.environ.pop(SCAN_ENV_VAR, None)
        else:
            os.environ[SCAN_ENV_VAR] = previous


def measure(
    names: list[str], budget: str, backends: list[str], steps: int, warmup: int,
    optimizer_backend: str | None = None,
) -> dict:
    """Steps/s per task and scan backend, with the machine and what Table 8 reports; every
    row uses the same optimizer step (``optimizer_backend``, default: auto's choice)."""
    device = default_device()
    optimizer_backend = optimizer_backend or optimizer_backend_for(device)
    rows = []
    for task in registry.tasks_for(names):
        missing = registry.missing_data(task, budget)
        if missing is not None:
            print(f"skipping {task.name} (needs data): {missing.splitlines()[0]}", file=sys.stderr)
            continue
        row = {"task": task.name, "budget": budget, "steps_per_s": {},
               "table_8_a100_full": TABLE_8_A100.get(task.name)}
        for backend in backends:
            row["steps_per_s"][backend] = steps_per_second(
                task, budget, backend, steps, warmup, optimizer_backend)
        rows.append(row)
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_label(device),
        "device": device_name(device),
        "threads": torch.get_num_threads(),
        "env": environment(),
        "steps_timed": steps,
        "optimizer": f"kernels.optim.AdamW(backend={optimizer_backend!r})",
        "rows": rows,
    }


def format_table(report: dict) -> str:
    backends = sorted({b for row in report["rows"] for b in row["steps_per_s"]},
                      key=["sequential", "chunked", "triton"].index)
    header = f"{'task':18s}" + "".join(f"{b:>12s}" for b in backends)
    lines = [f"steps/s on {report['device']}, torch threads: {report['threads']}, "
             f"optimizer step: {report['optimizer']}", header]
    for row in report["rows"]:
        cells = "".join(f"{row['steps_per_s'].get(b, float('nan')):12.2f}" for b in backends)
        lines.append(f"{row['task']:18s}{cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suites.lra.throughput", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS), metavar="TASK")
    parser.add_argument("--budget", default="quick", choices=("smoke", "quick", "full"))
    parser.add_argument("--backends", nargs="+", default=None,
                        choices=("sequential", "chunked", "triton"),
                        help="default: sequential and chunked, and triton on a GPU")
    parser.add_argument("--optimizer-backend", default=None, choices=("torch", "triton"),
                        help="the optimizer step of every row (default: auto's choice here)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default: results/throughput/<machine>.json)")
    args = parser.parse_args(argv)
    warm_up()  # as in every runner process: subnormals flushed, one-time costs paid
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be at least 1 and --warmup at least 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    backends = args.backends or backends_here(default_device())
    try:
        report = measure(args.tasks, args.budget, backends, args.steps, args.warmup,
                         args.optimizer_backend)
    except (KeyError, ValueError) as err:
        parser.error(str(err))
    print(format_table(report))
    out = args.out or Path("results") / "throughput" / f"{report['machine']}.json"
    with atomic_open(out) as f:
        json.dump(report, f, indent=1)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
