"""The LRU's design steps (thesis Tables 3–4) on an LRA task, one optimizer config each.

``python -m suites.lra.ablation --task lra/listops --budget quick`` trains the task's
model with each row of :data:`suites.lra.model.DESIGN_STEPS` (dense ReLU/tanh RNNs, a
dense linear RNN, then Λ diagonal as ``a + ib``, ``exp``, the stable exponential, + ring
init, + γ normalization: the LRU) through the runner's loop with one optimizer
configuration (AdamW, lr 3e-3 unless ``--lr``) and prints validation and test accuracy
per step, with the training steps/s. It writes ``results/ablation/<task>-<budget>.json``
(``--out``). Dense nonlinear RNNs run as a sequential loop: slow by design (Table 8).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from suites import registry
from suites.atomic import atomic_open
from suites.executors.local import execute
from suites.lra.model import DESIGN_STEPS
from suites.submission import load_submission
from suites.training import warm_up


def with_design_step(task, budget: str, step: str):
    """``task`` whose ``budget`` scale builds the model of design step ``step``."""
    if step not in DESIGN_STEPS:
        raise KeyError(f"unknown design step {step!r}: expected one of {list(DESIGN_STEPS)}")
    scale = task.scales[budget]
    config = dataclasses.replace(scale.config, **DESIGN_STEPS[step])
    scales = {**task.scales, budget: dataclasses.replace(scale, config=config)}
    return dataclasses.replace(task, scales=scales)


def run(task_name: str, budget: str, steps: list[str], optimizer: str, hparams: dict,
        seed: int = 0) -> list[dict]:
    """One run per design step; rows of step, status, accuracies and steps/s."""
    task = registry.get_task(task_name)
    missing = registry.missing_data(task, budget)
    if missing is not None:
        raise FileNotFoundError(missing)
    submission = load_submission(registry.resolve_optimizer(optimizer))
    rows = []
    for step in steps:
        result = execute(with_design_step(task, budget, step), submission, hparams, seed, budget)
        rows.append({
            "step": step, **DESIGN_STEPS[step], "status": result.status,
            "val_accuracy": result.metrics.get("val_accuracy"),
            "test_accuracy": result.metrics.get("test_accuracy"),
            "steps_per_s": 1.0 / result.time_per_step if result.time_per_step > 0 else None,
            "error": result.error.strip().splitlines()[-1] if result.error else None,
        })
        print(_format_row(rows[-1]), flush=True)
    return rows


def _format_row(row: dict) -> str:
    def pct(value):
        return "   -  " if value is None else f"{100 * value:5.1f}%"

    speed = "-" if row["steps_per_s"] is None else f"{row['steps_per_s']:.1f}"
    return (f"{row['step']:11s} {row['status']:9s} val {pct(row['val_accuracy'])}  "
            f"test {pct(row['test_accuracy'])}  {speed} steps/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suites.lra.ablation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="lra/listops")
    parser.add_argument("--budget", default="quick", choices=("smoke", "quick", "full"))
    parser.add_argument("--steps", nargs="+", default=list(DESIGN_STEPS), metavar="STEP",
                        help=f"design steps (default: all of {', '.join(DESIGN_STEPS)})")
    parser.add_argument("--optimizer", default="adamw", help="built-in name or file")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    warm_up()  # as in every runner process: subnormals flushed, one-time costs paid
    submission = load_submission(registry.resolve_optimizer(args.optimizer))
    hparams = dict(submission.configs()[0])
    if submission.lr_key is not None:
        hparams[submission.lr_key] = args.lr
    try:
        rows = run(args.task, args.budget, args.steps, args.optimizer, hparams, args.seed)
    except (KeyError, FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    out = args.out or Path("results") / "ablation" / (
        f"{args.task.replace('/', '-')}-{args.budget}.json")
    with atomic_open(out) as f:
        json.dump({"task": args.task, "budget": args.budget, "optimizer": args.optimizer,
                   "hparams": hparams, "seed": args.seed, "rows": rows}, f, indent=1)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
