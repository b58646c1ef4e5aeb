"""Evaluation of a run, in a process that never imported submission code.

The training worker hands over the model's tensors at each evaluation point
(``suites.training.EvalPoint``). Here the task's problem is built again from the same
(task, seed, budget) — so its data, held-out splits included, are this process's own —
each point's tensors are checked against the problem's (names, shapes, dtypes) and copied
in, and the problem's ``evaluate`` computes the metrics. The initial metrics come from
the freshly built problem itself, before any point is copied in: they need nothing from
the worker. Everything runs on one CPU thread, so a state evaluates to the same numbers
wherever this runs.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch

from suites.api import Problem, Progress, Task
from suites.training import EvalPoint, seed_everything


@dataclass
class Evaluation:
    """What the evaluating process found: the metrics at each point, at the initial
    parameters and at the last point, the bytes of the trained parameters, and what in the
    handed-over states did not match the task's model (each makes the run invalid)."""

    points: list[tuple[int, int, dict[str, float]]] = field(default_factory=list)
    initial: dict[str, float] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    param_bytes: int = 0
    problems: list[str] = field(default_factory=list)

    def curves(self) -> dict[str, list[float]]:
        """``eval_step`` and ``eval_<metric>`` per point (the run file's evaluation curves)."""
        curve: dict[str, list[float]] = {"eval_step": [step for step, _, _ in self.points]}
        keys = sorted({key for _, _, metrics in self.points for key in metrics})
        for key in keys:
            curve[f"eval_{key}"] = [m.get(key, math.nan) for _, _, m in self.points]
        return curve


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def call_evaluate(problem: Problem, step: int, grad_evals: int) -> dict[str, float]:
    """``problem.evaluate`` at a point, given the ``Progress`` when it takes one; its
    metrics as floats."""
    evaluate = problem.evaluate
    try:
        takes_progress = bool(inspect.signature(evaluate).parameters)
    except (TypeError, ValueError):
        takes_progress = False
    with torch.no_grad():
        metrics = evaluate(Progress(step, grad_evals)) if takes_progress else evaluate()
    return {str(k): float(v) for k, v in metrics.items()}


def _parameter_bytes(problem: Problem) -> int:
    total = 0
    for group in problem.param_groups:
        params = group["params"]
        for p in params if isinstance(params, (list, tuple)) else [params]:
            total += p.numel() * p.element_size()
    return total


def state_problems(own: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> list[str]:
    """Why ``given`` (a worker's tensors) is not a state of the model ``own`` describes."""
    problems = []
    if set(given) != set(own):
        missing, extra = sorted(set(own) - set(given)), sorted(set(given) - set(own))
        problems.append(f"the state's tensors differ from the model's (missing {missing}, "
                        f"unknown {extra})")
    for name in sorted(set(own) & set(given)):
        mine, theirs = own[name], given[name]
        if not isinstance(theirs, torch.Tensor) or theirs.shape != mine.shape \
                or theirs.dtype != mine.dtype:
            what = (f"{tuple(theirs.shape)} {theirs.dtype}" if isinstance(theirs, torch.Tensor)
                    else type(theirs).__name__)
            problems.append(f"state tensor {name!r} is {what}, the model's is "
                            f"{tuple(mine.shape)} {mine.dtype}")
    return problems


def evaluate_run(task: Task, seed: int, budget: str, points: Sequence[EvalPoint]) -> Evaluation:
    """Evaluate a run's points (in order) on the task's own problem for (seed, budget)."""
    result = Evaluation()
    with one_thread():
        seed_everything(task.name, seed)
        problem = task.setup(seed, budget)
        own = problem.state_tensors()
        result.param_bytes = _parameter_bytes(problem)
        result.initial = call_evaluate(problem, 0, 0)
        for point in points:
            problems = state_problems(own, point.tensors)
            if problems:
                result.problems += [f"at step {point.step}: {p}" for p in problems]
                break
            with torch.no_grad():
                for name, tensor in own.items():
                    tensor.copy_(point.tensors[name])
            result.points.append((point.step, point.grad_evals,
                                  call_evaluate(problem, point.step, point.grad_evals)))
    if result.points:
        result.final = result.points[-1][2]
    return result
