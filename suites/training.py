"""One run's training: the loop that every task and every optimizer goes through.

``train`` runs in the training worker, the one process that imports the submission. It
builds the problem and the optimizer, steps until the budget of gradient evaluations is
spent (or the task stops the run, or the time limit passes), and returns what it
measured — a ``suites.record.TrainingReport`` — and the model's tensors at each
evaluation point. It evaluates nothing: the driver has the points evaluated in a process
that never imported submission code (``suites.evaluation``), so neither the held-out data
nor the function that scores them is within the submission's reach.

Per step it fixes the batch and calls ``optimizer.step(closure)``; the closure zeroes the
gradients, computes ``problem.loss(step)``, backpropagates, counts one gradient
evaluation (``GRAPH_EVAL_COST`` when it builds a graph for Hessian-vector products) and
returns the loss. A closure called when the budget is spent ends the run instead, so no
optimizer gets more gradients than the budget, however many it asks for per step. A
non-finite loss is recorded as ``diverged`` (no optimizer ever steps on it), a passed time
limit as ``timeout``, an exception as ``error`` with its traceback.

This module imports only the contracts (``suites.api``, ``suites.record``).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import platform
import random
import subprocess
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from suites.api import GRAPH_EVAL_COST, Problem, Submission, Task
from suites.record import TrainingReport

log = logging.getLogger(__name__)

#: Keys of a task's parameter groups that are for the runner, not the optimizer.
RUNNER_GROUP_KEYS = ("lr_scale", "name")
#: A training curve keeps at most this many points (always the first and the last).
CURVE_POINTS = 512
#: Steps whose time counts as warm-up (compilation, first allocations), not as step time.
WARMUP_STEPS = 3
PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
    groups: Sequence[dict[str, Any]], hparams: Mapping[str, Any], lr_key: str | None
) -> list[dict[str, Any]]:
    """A task's parameter groups as the optimizer should see them.

    A group's ``lr_scale`` multiplies the submission's step size (``hparams[lr_key]``)
    for that group, once, in the group's initial step size; ``lr_scale`` and the other
    runner-only keys are removed. Any other key (e.g. ``weight_decay=0.0``) stays and
    overrides the optimizer's default, and so do ``param_names`` (PyTorch's named
    parameter groups): every built-in task names its parameters, so that an optimizer can
    tell matrices from vectors by name as well.
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


class OptimizerSet:
    """Several optimizers that ``build`` returned (e.g. Muon for the hidden matrices and
    AdamW for the rest), stepped as one: ``step(closure)`` evaluates the closure once, then
    steps each optimizer in order, giving each a closure whose first call returns that
    loss (a second call within the step evaluates again, and is counted). ``zero_grad``,
    ``state_dict``, ``param_groups``, ``train``/``eval`` and the state cover all of them."""

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]):
        self.optimizers = list(optimizers)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [group for optimizer in self.optimizers for group in optimizer.param_groups]

    @property
    def state(self) -> dict[Any, Any]:
        merged: dict[Any, Any] = {}
        for optimizer in self.optimizers:
            merged.update(optimizer.state)
        return merged

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> list[dict[str, Any]]:
        return [optimizer.state_dict() for optimizer in self.optimizers]

    def load_state_dict(self, states: Sequence[dict[str, Any]]) -> None:
        for optimizer, state in zip(self.optimizers, states, strict=True):
            optimizer.load_state_dict(state)

    def train(self) -> None:
        for optimizer in self.optimizers:
            set_mode(optimizer, "train")

    def eval(self) -> None:
        for optimizer in self.optimizers:
            set_mode(optimizer, "eval")

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        with torch.enable_grad():
            loss = closure()
        for optimizer in self.optimizers:
            given = [False]

            def once(loss: torch.Tensor = loss, given: list[bool] = given) -> torch.Tensor:
                if not given[0]:
                    given[0] = True
                    return loss
                with torch.enable_grad():
                    return closure()

            optimizer.step(once)
        return loss


def as_optimizer(built: Any) -> torch.optim.Optimizer | OptimizerSet:
    """What ``build`` returned as one steppable optimizer; ``TypeError`` naming what is
    wrong otherwise."""
    if isinstance(built, torch.optim.Optimizer):
        return built
    if isinstance(built, (list, tuple)) and built and all(
            isinstance(o, torch.optim.Optimizer) for o in built):
        return built[0] if len(built) == 1 else OptimizerSet(built)
    if isinstance(built, (list, tuple)) and built:
        kinds = (f"a {type(built).__name__} of "
                 + ", ".join(sorted({type(o).__name__ for o in built})))
    else:
        kinds = type(built).__name__
    raise TypeError(f"build returned {kinds}, not a torch.optim.Optimizer (nor a list or "
                    "tuple of them): return the optimizer(s)")


def optimizer_state_bytes(optimizer: torch.optim.Optimizer | OptimizerSet) -> int:
    """Bytes held by the tensors in the optimizer's state (buffers, moments, step counts),
    every optimizer of a set counted."""
    total = 0
    for state in optimizer.state.values():
        stack = list(state.values()) if isinstance(state, dict) else [state]
        while stack:
            value = stack.pop()
            if torch.is_tensor(value):
                total += value.numel() * value.element_size()
            elif isinstance(value, (list, tuple)):
                stack.extend(value)
            elif isinstance(value, dict):
                stack.extend(value.values())
    return total


def downsample_index(length: int, points: int = CURVE_POINTS) -> list[int]:
    """At most ``points`` evenly spread indices of ``range(length)``, always the first and
    last."""
    if length <= points:
        return list(range(length))
    return [int(i) for i in np.unique(np.linspace(0, length - 1, points).round().astype(int))]


def downsample(values: Sequence[Any], points: int = CURVE_POINTS) -> list[Any]:
    """At most ``points`` evenly spread entries of ``values``, always the first and last."""
    return [values[i] for i in downsample_index(len(values), points)]


@functools.cache
def environment() -> dict[str, Any]:
    """Where runs are made: code version, library versions, device and the machine's label
    (no host name: results are published)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
            timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    try:
        triton_version = metadata.version("triton")
    except metadata.PackageNotFoundError:
        triton_version = None
    from kernels.machine import default_device, machine_label

    if torch.cuda.is_available():
        device = f"cuda: {torch.cuda.get_device_name(0)}"
    else:
        device = f"cpu: {platform.processor() or platform.machine()}"
    return {
        "git_commit": commit,
        "torch": torch.__version__,
        "triton": triton_version,
        "numpy": np.__version__,
        "device": device,
        "machine": machine_label(default_device()),
        "python": platform.python_version(),
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


def set_mode(optimizer: Any, mode: str) -> None:
    """``optimizer.train()`` / ``optimizer.eval()`` where it has them (the schedule-free
    convention: training steps at one iterate, evaluation at another)."""
    switch = getattr(optimizer, mode, None)
    if callable(switch):
        switch()


# --------------------------------------------------------------------------- integrity


#: Process-wide torch settings a submission could change, and how to read each.
_GLOBAL_STATE: dict[str, Callable[[], Any]] = {
    "default dtype": torch.get_default_dtype,
    "threads": torch.get_num_threads,
    "interop threads": torch.get_num_interop_threads,
    "grad mode": torch.is_grad_enabled,
    "anomaly detection": torch.is_anomaly_enabled,
    "deterministic algorithms": torch.are_deterministic_algorithms_enabled,
    "matmul precision": torch.get_float32_matmul_precision,
    "default device": lambda: str(torch.get_default_device()),
}
#: Functions a monkeypatch replaces (torch's, the clock's, the seeding's and this loop's
#: own): recorded by identity.
_PATCHABLE: dict[str, Callable[[], Any]] = {
    "torch.Tensor.backward": lambda: torch.Tensor.backward,
    "torch.autograd.backward": lambda: torch.autograd.backward,
    "torch.autograd.grad": lambda: torch.autograd.grad,
    "torch.nn.Module.__call__": lambda: torch.nn.Module.__call__,
    "torch.optim.Optimizer.zero_grad": lambda: torch.optim.Optimizer.zero_grad,
    "torch.manual_seed": lambda: torch.manual_seed,
    "torch.random.manual_seed": lambda: torch.random.manual_seed,
    "numpy.random.seed": lambda: np.random.seed,
    "random.seed": lambda: random.seed,
    "time.perf_counter": lambda: time.perf_counter,
    "time.monotonic": lambda: time.monotonic,
}


def _harness_functions() -> dict[str, Callable[[], Any]]:
    module = globals()
    return {f"suites.training.{name}": functools.partial(module.get, name)
            for name in ("train", "_step_loop", "_snapshot", "seed_everything",
                         "optimizer_param_groups", "step_timing", "TrainingReport")}


def global_state() -> dict[str, Any]:
    """The process's global state a run could change: torch settings by value, patchable
    functions (torch's, the clock, the seeding, this loop's) by identity."""
    state: dict[str, Any] = {name: read() for name, read in _GLOBAL_STATE.items()}
    state.update({name: id(read()) for name, read in
                  {**_PATCHABLE, **_harness_functions()}.items()})
    return state


def global_state_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What differs between two ``global_state`` snapshots, one line per setting."""
    patchable = {**_PATCHABLE, **_harness_functions()}
    changes = []
    for name, old in before.items():
        new = after.get(name)
        if new != old:
            changes.append(f"{name} replaced" if name in patchable else f"{name}: {old} → {new}")
    return changes


# --------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class EvalPoint:
    """The model at one evaluation point: how far the run had got, and its tensors (on the
    CPU, detached copies, by ``Problem.state_tensors`` name)."""

    step: int
    grad_evals: int
    tensors: dict[str, torch.Tensor]


@dataclass
class TrainingOutcome:
    """What ``train`` returns: the report and the evaluation points (the last one is the
    state the run ended in)."""

    report: TrainingReport
    points: list[EvalPoint] = field(default_factory=list)


class _NonFiniteLoss(Exception):
    """Raised inside the closure so that no optimizer ever steps on a NaN or inf loss."""


class _BudgetSpent(Exception):
    """Raised inside the closure when a call would exceed the budget of evaluations."""


def train(
    task: Task,
    submission: Submission,
    hparams: Mapping[str, Any],
    seed: int,
    budget: str,
    *,
    time_limit: float | None = None,
    pristine_state: Mapping[str, Any] | None = None,
) -> TrainingOutcome:
    """Train ``task``'s problem for (seed, budget) with one optimizer configuration.

    Never raises for problems of the run itself: the report's ``status`` is ``ok``,
    ``diverged`` (a non-finite loss), ``timeout`` (``time_limit`` seconds passed, counted
    from the start, set-up included) or ``error`` (``error`` holds the root cause and the
    traceback; ``out_of_memory`` when the allocator gave up). ``pristine_state``: the
    process's ``global_state`` before any submission was imported; what changed since is
    reported.
    """
    started = time.perf_counter()
    deadline = started + time_limit if time_limit else math.inf
    loop = _Loop()
    status, error, optimizer = "ok", None, None
    try:
        seed_everything(task.name, seed)
        problem = task.setup(seed, budget)
        groups = optimizer_param_groups(problem.param_groups, hparams, submission.lr_key)
        optimizer = as_optimizer(submission.build(groups, **hparams))
        schedule = None if submission.schedule == "own" else \
            step_size_schedule(problem, optimizer, submission.lr_key)
        status = _step_loop(problem, optimizer, loop, deadline, schedule,
                            create_graph=submission.create_graph)
    except Exception as err:  # noqa: BLE001 -- a failing run is a result, not a crash
        status = "out_of_memory" if _out_of_memory(err) else "error"
        error = f"{root_cause(err, submission.path)}\n\n{traceback.format_exc()}"
        log.debug("run of %s on %s failed:\n%s", submission.name, task.name, error)
    target = task.metric.target
    evals_to_target = None
    if target is not None:
        evals_to_target = next((evals for value, evals in zip(loop.losses, loop.evals,
                                                              strict=True)
                                if value <= target), None)
    kept = downsample_index(len(loop.losses))
    time_per_step, warmup_time = step_timing(loop.step_times)
    changes = global_state_changes(pristine_state, global_state()) if pristine_state else []
    report = TrainingReport(
        status=status,
        steps_run=loop.steps,
        grad_evals=loop.spent,
        evals_to_target=evals_to_target,
        curve={"step": [i + 1 for i in kept], "loss": [loop.losses[i] for i in kept],
               "grad_evals": [loop.evals[i] for i in kept]},
        time_per_step=time_per_step,
        warmup_time=warmup_time,
        train_time=float(sum(loop.step_times)),
        state_bytes=optimizer_state_bytes(optimizer) if optimizer is not None else 0,
        global_state_changes=changes,
        error=error,
    )
    return TrainingOutcome(report, downsample(loop.points, CURVE_POINTS))


def _out_of_memory(err: BaseException) -> bool:
    return isinstance(err, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(err, RuntimeError) and "can't allocate memory" in str(err))


@dataclass
class _Loop:
    """What the step loop has measured so far."""

    losses: list[float] = field(default_factory=list)  # the loss at each step's iterate
    evals: list[int] = field(default_factory=list)  # gradient evaluations after each step
    step_times: list[float] = field(default_factory=list)
    points: list[EvalPoint] = field(default_factory=list)
    steps: int = 0
    spent: int = 0


def _snapshot(problem: Problem, optimizer: Any, loop: _Loop) -> None:
    """The model's tensors now, seen at the optimizer's evaluation iterate (schedule-free
    optimizers evaluate at their average)."""
    if loop.points and loop.points[-1].step == loop.steps:
        return
    set_mode(optimizer, "eval")
    try:
        with torch.no_grad():
            tensors = {name: t.detach().to("cpu", copy=True)
                       for name, t in problem.state_tensors().items()}
    finally:
        set_mode(optimizer, "train")
    loop.points.append(EvalPoint(loop.steps, loop.spent, tensors))


def _step_loop(
    problem: Problem,
    optimizer: Any,
    loop: _Loop,
    deadline: float,
    schedule: Callable[[int], None] | None = None,
    create_graph: bool = False,
) -> str:
    """Step until the budget of gradient evaluations is spent; returns the status."""
    cost = GRAPH_EVAL_COST if create_graph else 1
    step_loss: list[float] = []

    def closure() -> torch.Tensor:
        if loop.spent + cost > problem.steps:
            raise _BudgetSpent
        optimizer.zero_grad(set_to_none=True)
        loss = problem.loss(loop.steps)
        value = float(loss.detach())
        if not math.isfinite(value):
            step_loss.append(value)
            raise _NonFiniteLoss
        loss.backward(create_graph=create_graph)
        loop.spent += cost
        step_loss.append(value)  # the first call of a step is the loss at the current iterate
        return loss

    set_mode(optimizer, "train")
    while loop.spent + cost <= problem.steps:
        if time.perf_counter() > deadline:
            _snapshot(problem, optimizer, loop)
            return "timeout"
        step_loss.clear()
        if schedule is not None:
            schedule(loop.spent)
        tick = time.perf_counter()
        try:
            optimizer.step(closure)
        except _NonFiniteLoss:
            loop.step_times.append(time.perf_counter() - tick)
            loop.losses.append(step_loss[-1])
            loop.steps += 1
            loop.evals.append(loop.spent)
            _snapshot(problem, optimizer, loop)
            return "diverged"
        except _BudgetSpent:
            if not step_loss:  # not one evaluation left for this step: the budget is spent
                break
            loop.step_times.append(time.perf_counter() - tick)
            loop.losses.append(step_loss[0])
            loop.steps += 1
            loop.evals.append(loop.spent)
            break  # the step asked for more than the budget: the run ends where it stands
        loop.step_times.append(time.perf_counter() - tick)
        if not step_loss:
            raise RuntimeError(
                "optimizer.step(closure) did not call the closure: no loss was computed")
        loop.losses.append(step_loss[0])
        loop.steps += 1
        loop.evals.append(loop.spent)
        if problem.eval_every and loop.steps % problem.eval_every == 0 \
                and loop.spent + cost <= problem.steps:
            _snapshot(problem, optimizer, loop)
        if problem.stop is not None and problem.stop(step_loss[0], loop.steps - 1):
            break
    _snapshot(problem, optimizer, loop)
    return "ok"


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
    problem: Problem, optimizer: Any, lr_key: str | None
) -> Callable[[int], None] | None:
    """A function that sets every group's step size before a step, from
    ``problem.lr_schedule`` at the gradient evaluations spent so far.

    Each group keeps its own base step size (the submission's, times the task's
    ``lr_scale``); the schedule multiplies it. ``None`` when the problem has no schedule,
    or when the submission declares ``lr_key = None``: a method without a step size
    hyperparameter (SPS, DecSPS: the step is computed from the loss) sets every step
    itself. (A submission with ``schedule = "own"`` never gets here.)
    """
    if problem.lr_schedule is None or lr_key is None:
        return None
    missing = [i for i, g in enumerate(optimizer.param_groups) if lr_key not in g]
    if missing:
        raise ValueError(
            f"the optimizer's param groups {missing} have no {lr_key!r} (the submission's "
            "lr_key): the task's step-size schedule cannot be applied; declare "
            "schedule = \"own\" if the optimizer schedules itself")
    base = [group[lr_key] for group in optimizer.param_groups]
    multiplier = problem.lr_schedule

    def set_step(position: int) -> None:
        factor = float(multiplier(position))
        for group, value in zip(optimizer.param_groups, base, strict=True):
            group[lr_key] = value * factor

    return set_step


def step_timing(times: Sequence[float]) -> tuple[float, float]:
    """(median seconds per step after the warm-up steps, seconds of the warm-up steps).

    A run shorter than the warm-up reports the median of all its steps."""
    if not times:
        return math.nan, math.nan
    warm, rest = list(times[:WARMUP_STEPS]), list(times[WARMUP_STEPS:])
    return float(np.median(rest or warm)), float(sum(warm))
