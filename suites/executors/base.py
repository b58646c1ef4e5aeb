"""What every executor shares: the ``Executor`` interface, the messages between the driver
and a training worker, and how the driver turns a worker's report into a run's result.

Trust: the training worker (``suites.executors.trainer``) imports the submission, so
nothing it sends is trusted. It returns only what it measured (``suites.record
.TrainingReport``, as JSON) and the model's tensors at the evaluation points (tensors only,
read with ``torch.load(weights_only=True)``: no pickle from a worker is ever unpickled).
``assemble_result`` — run by the driver, or by a trusted supervisor on a cluster node —
checks the report against the driver's own spec, has the points evaluated in this process
(``suites.evaluation``: the task's problem built afresh, held-out data included), and
writes every other field itself: spec, task, metric, score, wall time, environment.

``suites.executors.local`` runs on this machine (worker processes); ``suites.executors
.cluster`` on Ray or Slurm. Every run uses one CPU thread whatever executes it, so a
(task, config, seed) gives the same numbers in-process, locally, on Ray and on Slurm.
"""

from __future__ import annotations

import abc
import io
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

import torch
from pydantic import ValidationError

from suites.api import Chance, Task
from suites.evaluation import evaluate_run
from suites.record import (
    TRAINING_CURVES,
    MetricRecord,
    RunResult,
    RunSpec,
    TrainingReport,
    portable,
)
from suites.training import EvalPoint, TrainingOutcome, environment

log = logging.getLogger(__name__)

TaskLookup = Callable[[str], Task]
#: The most bytes a worker's message about one run may have (report and tensors).
MAX_MESSAGE_BYTES = 512 * 2**20
#: Seconds by which a worker's reported time inside steps may exceed the driver's clock.
CLOCK_SLACK = 0.5
#: Less than any optimizer step takes (a Python call and a closure alone take longer).
MIN_STEP_SECONDS = 1e-6


class Executor(abc.ABC):
    """Runs specs somewhere and yields their results as they complete (in any order).

    ``tasks`` maps the specs' task names to the task objects; an executor that runs in
    other processes looks tasks up by name there instead (see ``LocalExecutor``).
    """

    @abc.abstractmethod
    def map(
        self, specs: Iterable[RunSpec], tasks: Mapping[str, Task] | None = None
    ) -> Iterator[RunResult]: ...

    def close(self) -> None:
        """Release what the executor holds (worker processes, a Ray instance it started)."""
        return None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def default_kill_after(time_limit: float | None) -> float | None:
    """When to kill a run that ignores its time limit: 1.25 × the limit + 10 s."""
    return None if time_limit is None else time_limit * 1.25 + 10.0


def stuck_message(elapsed: float, time_limit: float | None) -> str:
    return (
        f"killed after {elapsed:.1f} s: the run did not stop at its time limit "
        f"({time_limit} s), most likely stuck inside one step"
    )


def registry_task(name: str) -> Task:
    """The default task lookup: the registry, read at call time."""
    from suites import registry

    return registry.get_task(name)


def submission_key(spec: RunSpec) -> tuple[str, str]:
    """Which submission a run belongs to: its worker processes serve no other."""
    return (spec.optimizer.runtime_path or "", spec.optimizer.source_hash)


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class TrainRequest:
    """The driver's message to a training worker: one run to make (pickled; the worker
    trusts the driver, never the other way round). ``task`` is the task object when the
    driver has one the registry may not (a test's), sent once per worker."""

    spec: RunSpec
    time_limit: float | None
    task: Task | None = None


def encode_outcome(outcome: TrainingOutcome) -> bytes:
    """A worker's message about one run: the report as JSON, a newline, then the points'
    tensors as ``torch.save`` of plain lists, dicts, ints and tensors."""
    points = [[p.step, p.grad_evals, p.tensors] for p in outcome.points]
    buffer = io.BytesIO()
    torch.save(points, buffer)
    return outcome.report.model_dump_json().encode() + b"\n" + buffer.getvalue()


class MalformedMessage(ValueError):
    """A worker's message that is not a report and tensors of the expected form."""


def decode_outcome(data: bytes) -> TrainingOutcome:
    """``encode_outcome``'s inverse for an untrusted sender: the report validated by the
    schema (unknown fields refused), the tensors read by ``torch.load(weights_only=True)``
    and checked to be ``[[step, grad_evals, {name: tensor}], ...]``."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise MalformedMessage(f"{len(data)} bytes, over the {MAX_MESSAGE_BYTES} a run's "
                               "message may have")
    header, separator, payload = data.partition(b"\n")
    if not separator:
        raise MalformedMessage("no report line")
    try:
        report = TrainingReport.model_validate_json(header)
    except ValidationError as err:
        raise MalformedMessage(f"not a training report: {err.errors()[0]['loc']}: "
                               f"{err.errors()[0]['msg']}") from err
    try:
        raw = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    except Exception as err:  # noqa: BLE001 -- anything the loader refuses is malformed
        raise MalformedMessage(f"the tensors are not readable ({type(err).__name__}: "
                               f"{err})") from err
    points = []
    if not isinstance(raw, list):
        raise MalformedMessage("the evaluation points are not a list")
    for entry in raw:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], int)
                and isinstance(entry[1], int) and isinstance(entry[2], dict)
                and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                        for k, v in entry[2].items())):
            raise MalformedMessage("an evaluation point is not [step, grad_evals, "
                                   "{name: tensor}]")
        points.append(EvalPoint(entry[0], entry[1], entry[2]))
    return TrainingOutcome(report, points)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Observed:
    """What the driver measured of a run itself: its wall time (from handing the run to a
    worker to receiving the report), the worker's resident memory at its largest, what the
    run printed, how the worker was confined, and, for a worker's first run, how long the
    worker took to start."""

    wall_time: float = math.nan
    peak_rss_bytes: int | None = None
    output_tail: str = ""
    output_bytes: int = 0
    sandbox: str = "none"
    worker_start: float = math.nan


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def failed_result(spec: RunSpec, task: Task, status: str, error: str,
                  observed: Observed = Observed(), invalid: str | None = None) -> RunResult:
    """The result of a run that ended without a report (a lost or killed worker, a message
    the driver refused)."""
    return RunResult(
        spec=spec, suite=task.suite, metric=metric_record(task, spec.budget), status=status,
        score=_failed_score(task), error=portable(error), wall_time=observed.wall_time,
        peak_rss_bytes=observed.peak_rss_bytes, output_tail=portable(observed.output_tail),
        output_bytes=observed.output_bytes, sandbox=observed.sandbox, invalid=invalid,
        worker_start=observed.worker_start, env=environment(), created=_now(),
    )


#: (task type, task name, budget) → the task's chance level: read once per process.
_CHANCE: dict[tuple[str, str, str], Chance | None] = {}


def chance_of(task: Task, budget: str) -> Chance | None:
    """``Task.chance`` at ``budget``, computed once per process (it reads the test split);
    ``None`` when the task has none or cannot say (its data missing, its code failing)."""
    key = (type(task).__qualname__, task.name, budget)
    if key not in _CHANCE:
        try:
            _CHANCE[key] = task.chance(budget)
        except Exception as err:  # noqa: BLE001 -- a task whose chance fails has none recorded
            log.warning("%s: its chance level could not be read: %s", task.name, err)
            _CHANCE[key] = None
    return _CHANCE[key]


def metric_record(task: Task, budget: str) -> MetricRecord:
    """The run file's metric: the registered task's, with its chance level at ``budget``."""
    return MetricRecord.of(task.metric, chance_of(task, budget))


def _failed_score(task: Task) -> float:
    try:
        return float(task.score({}, 0, "error"))
    except Exception:  # noqa: BLE001 -- a task that cannot score a failure scores its worst
        return task.metric.failed_score


def consistency_problems(report: TrainingReport, spec: RunSpec, task: Task,
                         observed: Observed) -> list[str]:
    """Why a report cannot be trusted: it contradicts the driver's spec, its own numbers or
    the driver's clock, or the worker found its process's global state changed."""
    problems = report.check(spec, task.budgets.steps(spec.budget))
    if math.isfinite(observed.wall_time) and math.isfinite(report.train_time) \
            and report.train_time > observed.wall_time + CLOCK_SLACK:
        problems.append(f"reported {report.train_time:.3f} s inside steps, but the run took "
                        f"{observed.wall_time:.3f} s by the driver's clock")
    if report.steps_run >= 10 and report.train_time < report.steps_run * MIN_STEP_SECONDS:
        problems.append(f"reported {report.train_time:.3g} s inside {report.steps_run} steps, "
                        f"less than any step takes ({MIN_STEP_SECONDS:g} s): its clock was "
                        "tampered with")
    if report.global_state_changes:
        problems.append("changed its process's global state (" +
                        "; ".join(report.global_state_changes) + ")")
    return problems


def assemble_result(spec: RunSpec, task: Task, message: bytes,
                    observed: Observed = Observed()) -> RunResult:
    """The driver's result of a run from a worker's message: decoded, checked against the
    spec, its points evaluated here, every field but the measured ones the driver's own."""
    try:
        outcome = decode_outcome(message)
    except MalformedMessage as err:
        reason = f"the worker's message was refused: {err}"
        return failed_result(spec, task, "error", reason, observed, invalid=reason)
    report = outcome.report
    problems = consistency_problems(report, spec, task, observed)
    started = time.monotonic()
    try:
        evaluation = evaluate_run(task, spec.seed, spec.budget, outcome.points)
    except Exception as err:  # noqa: BLE001 -- the task's own evaluation failed: an error
        log.warning("%s: evaluation failed: %s", spec.task, err)
        return failed_result(spec, task, "error", f"evaluating the run failed: "
                             f"{type(err).__name__}: {err}", observed)
    problems += evaluation.problems
    status = report.status
    if not evaluation.points and status == "ok":
        status, problems = "error", problems + ["the worker reported no evaluation point"]
    try:
        score = float(task.score(evaluation.final, report.steps_run, status))
    except Exception as err:  # noqa: BLE001
        status, score = "error", _failed_score(task)
        problems.append(f"the task could not score the run ({type(err).__name__}: {err})")
    eval_time = time.monotonic() - started
    return RunResult(
        spec=spec, suite=task.suite, metric=metric_record(task, spec.budget), score=score,
        metrics=evaluation.final, initial_metrics=evaluation.initial,
        curve={**{k: v for k, v in report.curve.items() if k in TRAINING_CURVES},
               **evaluation.curves()},
        param_bytes=evaluation.param_bytes,
        **{**report.model_dump(exclude={"curve"}), "status": status,
           "error": portable(report.error)},
        wall_time=observed.wall_time, peak_rss_bytes=observed.peak_rss_bytes,
        output_tail=portable(observed.output_tail), output_bytes=observed.output_bytes,
        sandbox=observed.sandbox, invalid="; ".join(problems) or None,
        worker_start=observed.worker_start, eval_time=eval_time,
        env=environment(), created=_now(),
    )


def describe(result: RunResult) -> str:
    """One line naming a run, for logs."""
    return (f"{result.spec.task} / {result.spec.optimizer.name} "
            f"{json.dumps(result.spec.hparams)} seed {result.spec.seed}")
