"""One run: the training loop that every task and every optimizer goes through.

``execute`` trains one problem with one optimizer configuration in the current process
and always returns a ``RunResult``: a non-finite loss is recorded as ``diverged``, an
exceeded time limit as ``timeout`` and an exception as ``error`` with its traceback.
Per step it fixes the batch and calls ``optimizer.step(closure)``; the closure zeroes
the gradients, computes ``problem.loss(step)``, backpropagates and returns the loss.

This module imports only the contracts (``suites.api``): executors call it in whatever
process a run is made.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import platform
import random
import socket
import subprocess
import time
import traceback
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from suites.api import Problem, RunResult, RunSpec, Submission, Task

log = logging.getLogger(__name__)

#: Keys of a task's parameter groups that are for the runner, not the optimizer.
RUNNER_GROUP_KEYS = ("lr_scale", "name")
#: A training curve keeps at most this many points (always the first and the last).
CURVE_POINTS = 512



def seed_everything(task_name: str, seed: int) -> int:
    """Seed torch, numpy and ``random`` from (task, seed); returns the derived seed.

    Deriving from the task name gives every task its own random stream for seed 0.
    """
    digest = hashlib.sha256(f"{task_name}:{seed}".encode()).digest()
    derived = int.from_bytes(digest[:4], "little") & 0x7FFF_FFFF
    random.seed(derived)
    np.random.seed(derived)
    torch.manual_seed(derived)
    return derived


def optimizer_param_groups(
    groups: Sequence[dict[str, Any]], hparams: dict[str, Any], lr_key: str | None
) -> list[dict[str, Any]]:
    """A task's parameter groups as the optimizer should see them.

    A group's ``lr_scale`` multiplies the submission's step size (``hparams[lr_key]``)
    for that group; ``lr_scale`` and the other runner-only keys are removed. Any other
    key (e.g. ``weight_decay=0.0``) stays and overrides the optimizer's default, and so
    do ``param_names`` (PyTorch's named parameter groups): every built-in task names its
    parameters, so that an optimizer can tell matrices from vectors by name as well.
    """
    prepared = []
    for group in groups:
        group = dict(group)
        scale = group.pop("lr_scale", None)
        for key in RUNNER_GROUP_KEYS:
            group.pop(key, None)
        if scale is not None and lr_key is not None and lr_key in hparams:
            group[lr_key] = hparams[lr_key] * scale
        prepared.append(group)
    return prepared


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held by the tensors in ``optimizer.state`` (buffers, moments, step counts)."""
    total = 0
    for state in optimizer.state.values():
        stack = list(state.values())
        while stack:
            value = stack.pop()
            if torch.is_tensor(value):
                total += value.numel() * value.element_size()
            elif isinstance(value, (list, tuple)):
                stack.extend(value)
            elif isinstance(value, dict):
                stack.extend(value.values())
    return total


def parameter_bytes(groups: Sequence[dict[str, Any]]) -> int:
    params = [p for g in groups for p in (g["params"] if isinstance(g["params"], (list, tuple))
                                           else [g["params"]])]
    return sum(p.numel() * p.element_size() for p in params)


def downsample(values: Sequence[Any], points: int = CURVE_POINTS) -> list[Any]:
    """At most ``points`` evenly spread entries of ``values``, always the first and last."""
    if len(values) <= points:
        return list(values)
    index = np.unique(np.linspace(0, len(values) - 1, points).round().astype(int))
    return [values[i] for i in index]


@functools.cache
def environment() -> dict[str, Any]:
    """Where runs execute: code version, library versions, device, host."""
    try:
        root = Path(__file__).resolve().parent.parent
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    try:
        triton_version = metadata.version("triton")
    except metadata.PackageNotFoundError:
        triton_version = None
    if torch.cuda.is_available():
        device = f"cuda: {torch.cuda.get_device_name(0)}"
    else:
        device = f"cpu: {platform.processor() or platform.machine()}"
    return {
        "git_commit": commit,
        "torch": torch.__version__,
        "triton": triton_version,
        "device": device,
        "python": platform.python_version(),
        "hostname": socket.gethostname(),
    }


def warm_up() -> None:
    """Set up a process that makes runs: pay torch's one-time costs before any run is
    timed (building the first optimizer of a process imports ``torch._dynamo``: seconds).

    The process's floating-point settings stay PyTorch's defaults (no flush-to-zero):
    a submission's numerics are its own.
    """
    param = torch.zeros(1, requires_grad=True)
    param.grad = torch.zeros(1)
    torch.optim.SGD([param], lr=0.0).step()


class _NonFiniteLoss(Exception):
    """Raised inside the closure so that no optimizer ever steps on a NaN or inf loss."""


def execute(
    task: Task,
    submission: Submission,
    hparams: dict[str, Any],
    seed: int,
    budget: str,
    *,
    time_limit: float | None = None,
    phase: str = "tune",
) -> RunResult:
    """Train ``task``'s problem for (seed, budget) with one optimizer configuration.

    Never raises for problems of the run itself: the returned result's ``status`` is
    ``ok``, ``diverged`` (a non-finite loss), ``timeout`` (``time_limit`` seconds passed,
    counted from the start, set-up included) or ``error`` (``error`` holds the traceback).
    """
    started = time.perf_counter()
    deadline = started + time_limit if time_limit else math.inf
    spec = RunSpec(
        task=task.name,
        budget=budget,
        optimizer=submission.name,
        optimizer_path=submission.path,
        source_hash=submission.source_hash,
        hparams=dict(hparams),
        seed=seed,
        phase=phase,
        packages=dict(submission.packages),
        lr_key=submission.lr_key,
    )
    status, error = "ok", None
    losses: list[float] = []
    evals: list[tuple[int, dict[str, float]]] = []
    step_times: list[float] = []
    metrics: dict[str, float] = {}
    steps_run, state_bytes, param_bytes = 0, 0, 0
    try:
        seed_everything(task.name, seed)
        problem = task.setup(seed, budget)
        groups = optimizer_param_groups(problem.param_groups, hparams, submission.lr_key)
        param_bytes = parameter_bytes(groups)
        optimizer = submission.build(groups, **hparams)
        schedule = step_size_schedule(problem, optimizer, submission.lr_key)
        status, steps_run = _train(problem, optimizer, losses, evals, deadline, schedule,
                                   create_graph=submission.create_graph,
                                   step_times=step_times)
        state_bytes = optimizer_state_bytes(optimizer)
    except Exception as err:  # noqa: BLE001 -- a failing run is a result, not a crash
        status, error = "error", f"{root_cause(err, submission.path)}\n\n{traceback.format_exc()}"
        log.debug("run %s failed:\n%s", spec, error)
    if evals:  # the final evaluation, or the last periodic one of a run cut short
        metrics = evals[-1][1]
    try:
        score = float(task.score(metrics, steps_run, status))
    except Exception:  # noqa: BLE001
        if status != "error":
            status, error = "error", traceback.format_exc()
        score = math.nan
    target = task.metric.target
    steps_to_target = None
    if target is not None:
        steps_to_target = next((i + 1 for i, v in enumerate(losses) if v <= target), None)
    curve: dict[str, list[float]] = {
        "step": downsample(list(range(1, len(losses) + 1))),
        "loss": downsample(losses),
    }
    kept_evals = downsample(evals)
    curve["eval_step"] = [step for step, _ in kept_evals]
    for key in sorted({k for _, m in evals for k in m}):
        curve[f"eval_{key}"] = [m.get(key, math.nan) for _, m in kept_evals]
    time_per_step, warmup_time = step_timing(step_times)
    return RunResult(
        spec=spec,
        status=status,
        metrics=metrics,
        score=score,
        steps_run=steps_run,
        curve=curve,
        time_per_step=time_per_step,
        warmup_time=warmup_time,
        wall_time=time.perf_counter() - started,
        state_bytes=state_bytes,
        steps_to_target=steps_to_target,
        error=error,
        env=environment(),
        suite=task.suite,
        metric=task.metric,
        param_bytes=param_bytes,
    )


def root_cause(err: BaseException, submission_path: str) -> str:
    """One line for a failed run: the exception's type and first line, where the
    submission's file raised it (``file:line``), else where it was raised.

    The traceback's last line can be a library's advice (``Set TORCHDYNAMO_VERBOSE=1``);
    this line names what went wrong and in whose code.
    """
    frames = traceback.extract_tb(err.__traceback__)
    try:
        target = Path(submission_path).resolve()
        mine = [f for f in frames if Path(f.filename).resolve() == target]
    except OSError:
        mine = []
    where = mine[-1] if mine else (frames[-1] if frames else None)
    message = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    text = f"{type(err).__name__}: {message}" if message else type(err).__name__
    if where is not None:
        text += f" (at {Path(where.filename).name}:{where.lineno})"
    return text


def step_size_schedule(
    problem: Problem, optimizer: torch.optim.Optimizer, lr_key: str | None
) -> Callable[[int], None] | None:
    """A function that sets every group's step size for a step, from ``problem.lr_schedule``.

    Each group keeps its own base step size (the submission's, times the task's
    ``lr_scale``); the schedule multiplies it. ``None`` when the problem has no schedule,
    or when the submission declares ``lr_key = None``: a method without a step size
    hyperparameter (SPS, DecSPS: the step is computed from the loss) sets every step
    itself, so neither the schedule nor a group's ``lr_scale`` applies to it.
    """
    if problem.lr_schedule is None or lr_key is None:
        return None
    missing = [i for i, g in enumerate(optimizer.param_groups) if lr_key not in g]
    if missing:
        raise ValueError(
            f"the optimizer's param groups {missing} have no {lr_key!r} (the submission's "
            "lr_key): the task's step-size schedule cannot be applied"
        )
    base = [group[lr_key] for group in optimizer.param_groups]
    multiplier = problem.lr_schedule

    def set_step(step: int) -> None:
        factor = float(multiplier(step))
        for group, value in zip(optimizer.param_groups, base, strict=True):
            group[lr_key] = value * factor

    return set_step


#: Steps whose time counts as warm-up (compilation, first allocations), not as step time.
WARMUP_STEPS = 3


def set_mode(optimizer: torch.optim.Optimizer, mode: str) -> None:
    """``optimizer.train()`` / ``optimizer.eval()`` where it has them (the schedule-free
    convention: training steps at one iterate, evaluation at another)."""
    switch = getattr(optimizer, mode, None)
    if callable(switch):
        switch()


def _train(
    problem: Problem,
    optimizer: torch.optim.Optimizer,
    losses: list[float],
    evals: list[tuple[int, dict[str, float]]],
    deadline: float,
    schedule: Callable[[int], None] | None = None,
    create_graph: bool = False,
    step_times: list[float] | None = None,
) -> tuple[str, int]:
    """The step loop; returns (status, steps run) and appends each step's seconds to
    ``step_times``. ``create_graph``: the closure's backward builds a graph of the
    gradients (for Hessian-vector products)."""
    step = 0
    step_loss: list[float] = []
    times = step_times if step_times is not None else []

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = problem.loss(step)
        value = float(loss.detach())
        if not math.isfinite(value):
            step_loss.append(value)
            raise _NonFiniteLoss
        loss.backward(create_graph=create_graph)
        step_loss.append(value)  # the first call of a step is the loss at the current iterate
        return loss

    def evaluate() -> dict[str, float]:
        set_mode(optimizer, "eval")
        try:
            return _evaluate(problem)
        finally:
            set_mode(optimizer, "train")

    set_mode(optimizer, "train")
    for step in range(problem.steps):  # the closure reads ``step``
        if time.perf_counter() > deadline:
            return "timeout", step
        step_loss.clear()
        if schedule is not None:
            schedule(step)
        tick = time.perf_counter()
        try:
            optimizer.step(closure)
        except _NonFiniteLoss:
            losses.append(step_loss[-1])
            times.append(time.perf_counter() - tick)
            return "diverged", step + 1
        times.append(time.perf_counter() - tick)
        if not step_loss:
            raise RuntimeError(
                "optimizer.step(closure) did not call the closure: no loss was computed"
            )
        losses.append(step_loss[0])
        done = step + 1
        if problem.eval_every and done % problem.eval_every == 0 and done < problem.steps:
            evals.append((done, evaluate()))
        if problem.stop is not None and problem.stop(step_loss[0], step):
            evals.append((done, evaluate()))
            return "ok", done
    evals.append((problem.steps, evaluate()))
    return "ok", problem.steps


def step_timing(times: Sequence[float]) -> tuple[float, float]:
    """(median seconds per step after the warm-up steps, seconds of the warm-up steps).

    A run shorter than the warm-up reports the median of all its steps."""
    if not times:
        return math.nan, math.nan
    warm, rest = list(times[:WARMUP_STEPS]), list(times[WARMUP_STEPS:])
    return float(np.median(rest or warm)), float(sum(warm))


def _evaluate(problem: Problem) -> dict[str, float]:
    with torch.no_grad():
        return {k: float(v) for k, v in problem.evaluate().items()}
