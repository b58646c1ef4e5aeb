"""One run, declared once: the run's spec, what its training worker measured, what the
driver added, and from these the run file, the table's columns and the worker's message.

- ``RunSpec``: what the driver decides before a run (task, budget, optimizer, configuration,
  seed, phase, track); the run key hashes the part that determines the outcome.
- ``RunResult``: the whole run, as the run file stores it (``RunResult.model_dump`` plus the
  schema version, the run key and a digest). Each field says who writes it:
  ``measured(...)`` fields are reported by the training worker, which runs the submission
  and is not trusted; the others are the driver's (its spec, its clock, its environment,
  the evaluation it had made in a process that never imported the submission).
- ``TrainingReport``: the worker's message, *derived* from the ``measured`` fields of
  ``RunResult`` (so a new measured field is one declaration), checked by the driver
  against its spec before anything is stored (``TrainingReport.check``).
- ``COLUMNS``: the leaderboard table's columns, derived from the fields declared with a
  ``column`` name, plus a few columns computed from several fields (declared below, next
  to the fields they read). ``table_row`` turns a record into one row.

Numbers may be non-finite (a failed score is ``inf``); JSON has no such numbers, so the
file stores them as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, and a number
field accepts exactly those strings besides numbers.

This module imports only the contracts (``suites.api``): every process that makes, moves or
reads a run agrees on it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    create_model,
)

from suites.api import BUDGET_NAMES, Chance, Metric, Submission, Task

PROJECT_ROOT = Path(__file__).resolve().parent.parent

SCHEMA_VERSION = 2
RunStatus = Literal["ok", "diverged", "timeout", "error", "out_of_memory"]
#: Statuses of runs that produced no measurement (divergence is a measured outcome).
FAILED_STATUSES: tuple[str, ...] = ("error", "timeout", "out_of_memory")
#: "held_out": an evaluation run of a suite's held-out variant task, with the configuration
#: tuned on its public task; it is ranked apart (``leaderboard.variant_table``).
Phase = Literal["tune", "eval", "sensitivity", "held_out"]
#: "external": tuned on the task's tuning seeds (AlgoPerf's external tuning);
#: "self-tuning": the submission's declared ``defaults``, no tuning phase.
Track = Literal["external", "self-tuning"]
TRACKS: tuple[str, ...] = ("external", "self-tuning")
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
#: What the store records as a name (task, suite, optimizer, metric): printable text.
NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$"


# --------------------------------------------------------------------------- value types


def _number(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    raise ValueError(f"must be a number or one of 'NaN', 'Infinity', '-Infinity', "
                     f"not {type(value).__name__}")


def _optional_number(value: Any) -> float | None:
    return None if value is None else _number(value)


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    raise ValueError(f"must be a number, string, boolean or null, not {type(value).__name__}")


def _hparam(value: Any) -> Any:
    if isinstance(value, list):
        return [_scalar(v) for v in value]
    try:
        return _scalar(value)
    except ValueError:
        raise ValueError(f"must be a number, string, boolean, null or a list of them, not "
                         f"{type(value).__name__}") from None


def _iso_time(value: str) -> str:
    if value:
        try:
            datetime.fromisoformat(value)
        except ValueError as err:
            raise ValueError("must be an ISO 8601 time such as 2026-01-01T12:00:00+00:00") \
                from err
    return value


# Validators that run first: an error then names the field, not a member of a union.
Number = Annotated[float, BeforeValidator(_number)]
OptionalNumber = Annotated[float | None, BeforeValidator(_optional_number)]
Hyperparameter = Annotated[Any, BeforeValidator(_hparam)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=200, pattern=NAME_PATTERN)]
Count = Annotated[StrictInt, Field(ge=0)]
Time = Annotated[StrictStr, AfterValidator(_iso_time)]


def column(name: str | None = None, **field: Any) -> Any:
    """A field that is a column of the runs table (named ``name``, by default the field's)."""
    extra = dict(field.pop("json_schema_extra", None) or {})
    return Field(json_schema_extra={**extra, "column": name or True}, **field)


def measured(default: Any = ..., *, column_name: str | bool | None = None, **field: Any) -> Any:
    """A field that the training worker reports (part of ``TrainingReport``), optionally a
    column of the runs table (``column_name=True``: under its own name)."""
    extra: dict[str, Any] = {"measured": True}
    if column_name:
        extra["column"] = column_name
    if "default_factory" not in field:
        field["default"] = default
    return Field(json_schema_extra=extra, **field)


class _Model(BaseModel):
    # Known fields are typed and unknown ones refused: a run file is read by the schema
    # that wrote it (a new field is a new schema version), and a worker may add nothing.
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings",
                              protected_namespaces=())


# --------------------------------------------------------------------------- the spec


class OptimizerRef(_Model):
    """Which submission a run is of. ``path`` is where the file is *recorded* to have been:
    relative to the project (built-ins, files in the checkout) or the file's name alone;
    ``runtime_path`` is where this process loads it from, and is never written to a file."""

    name: Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=NAME_PATTERN)] = \
        column("optimizer")
    source_hash: StrictStr = column()
    path: StrictStr | None = None
    lr_key: StrictStr | None = column()
    #: "task": the task's step-size schedule is applied to ``lr_key``; "own": the harness
    #: never writes a group's step size after construction.
    schedule: Literal["task", "own"] = column(default="task")
    #: Resolved versions of the packages the file requires or imports (the platform aside).
    packages: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    runtime_path: StrictStr | None = Field(default=None, exclude=True)

    @classmethod
    def of(cls, submission: Submission) -> OptimizerRef:
        return cls(name=submission.name, source_hash=submission.source_hash,
                   path=recorded_path(submission.path), lr_key=submission.lr_key,
                   schedule=submission.schedule, packages=dict(submission.packages),
                   runtime_path=str(submission.path))


class RunSpec(_Model):
    """What one run is, decided by the driver; ``run_key`` hashes what determines its outcome
    (task, budget, optimizer name and source hash, configuration, seed, package versions)
    and the track when it is not the external-tuning one, so that each track's runs are its
    own even where a tuned configuration equals the declared defaults."""

    task: Name = column()
    budget: Literal[BUDGET_NAMES] = column()  # type: ignore[valid-type]
    optimizer: OptimizerRef
    hparams: dict[StrictStr, Hyperparameter]
    seed: StrictInt = column()
    #: "sensitivity": the tuned configuration with its step size × 2^k, on the tuning seeds.
    phase: Phase = column(default="tune")
    track: Track = column(default="external")

    @property
    def key(self) -> str:
        return run_key(self)

    @classmethod
    def of(cls, task: Task, submission: Submission, budget: str, hparams: dict[str, Any],
           seed: int, phase: str = "tune", track: str = "external") -> RunSpec:
        return cls(task=task.name, budget=budget, optimizer=OptimizerRef.of(submission),
                   hparams=dict(hparams), seed=seed, phase=phase, track=track)


def recorded_path(path: str | Path) -> str:
    """How a run file names a submission file: relative to the project when it is inside
    it, else by its name alone (a path on the machine that made the run means nothing
    elsewhere, and may say more than it should)."""
    resolved = Path(path).resolve()
    for base in (PROJECT_ROOT, Path.cwd().resolve()):
        if resolved.is_relative_to(base):
            return resolved.relative_to(base).as_posix()
    return resolved.name


def _machine_prefixes() -> list[tuple[str, str]]:
    import sys
    import tempfile

    prefixes = [(str(PROJECT_ROOT), ""), (sys.prefix, "<python>"),
                (sys.base_prefix, "<python>"), (tempfile.gettempdir(), "<tmp>"),
                (str(Path.home()), "~")]
    # Longest first: a prefix inside another (the venv inside the project) wins.
    return sorted({(p.rstrip("/"), name) for p, name in prefixes if p and p != "/"},
                  key=lambda item: -len(item[0]))


def portable(text: str | None) -> str | None:
    """``text`` (a traceback, a run's output) with this machine's paths replaced by portable
    names: the project's files relative to it, ``<python>/…``, ``<tmp>/…``, ``~/…``. Run
    files are published; a path of the machine that made them means nothing elsewhere."""
    if not text:
        return text
    for prefix, name in _machine_prefixes():
        replacement = f"{name}/" if name else ""
        text = text.replace(prefix + "/", replacement).replace(prefix, name or ".")
    return text


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, non-finite floats as strings: equal values, equal text."""
    return json.dumps(encode_floats(value), sort_keys=True, separators=(",", ":"),
                      allow_nan=False)


def config_key(hparams: dict[str, Any]) -> str:
    """A configuration's canonical text: the key that groups runs by configuration, and the
    ``config_key`` column of the tables."""
    return canonical_json(hparams)


def run_key(spec: RunSpec) -> str:
    """The identity of a run: 16 hex digits of sha256 over what determines its outcome."""
    identity: dict[str, Any] = {
        "task": spec.task, "budget": spec.budget, "optimizer": spec.optimizer.name,
        "source_hash": spec.optimizer.source_hash, "hparams": spec.hparams, "seed": spec.seed,
    }
    if spec.optimizer.packages:
        identity["packages"] = spec.optimizer.packages
    if spec.track != "external":  # the same run, asked for by another track, is made again
        identity["track"] = spec.track
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:16]


def encode_floats(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its string form."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: encode_floats(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_floats(v) for v in value]
    return value


# --------------------------------------------------------------------------- the run


class MetricRecord(_Model):
    """The task's metric as the registry defined it when the run was made (readers that
    have no registry show it; scoring takes the registered task's)."""

    name: Name = column("metric")
    higher_is_better: StrictBool = column()
    target: OptionalNumber = column(default=None)
    tolerance: Number = column(default=0.1)
    unit: StrictStr = ""
    select_by: StrictStr | None = None
    must_beat_initial: StrictBool = column(default=False)
    #: The score of a model that learned nothing at the run's budget (``Task.chance``: the
    #: test split's majority share), and the highest score still read as chance
    #: (``Chance.ceiling``); ``None`` for a task without one. Measured by the driver.
    chance: OptionalNumber = column(default=None)
    chance_ceiling: OptionalNumber = column(default=None)

    @classmethod
    def of(cls, metric: Metric, chance: Chance | None = None) -> MetricRecord:
        return cls(name=metric.name, higher_is_better=metric.higher_is_better,
                   target=metric.target, tolerance=metric.tolerance, unit=metric.unit,
                   select_by=metric.select_by,
                   must_beat_initial=getattr(metric, "must_beat_initial", False),
                   chance=None if chance is None else chance.score,
                   chance_ceiling=None if chance is None else chance.ceiling)

    def to_metric(self) -> Metric:
        fields = self.model_dump()
        known = set(Metric.__dataclass_fields__)
        return Metric(**{k: v for k, v in fields.items() if k in known})


class RunResult(_Model):
    """One run. Fields made with ``measured`` come from the training worker (untrusted,
    checked by the driver); the rest are the driver's."""

    spec: RunSpec
    suite: Name = column()
    metric: MetricRecord | None = None
    status: RunStatus = measured(column_name=True)
    #: The task's score of the evaluation the driver had made (``Task.score``).
    score: Number = column(default=math.nan)
    #: The metrics of the last evaluation point (the final one, or the last of a run cut short).
    metrics: dict[StrictStr, OptionalNumber] = Field(default_factory=dict)
    #: The metrics at the initial parameters, before any step.
    initial_metrics: dict[StrictStr, OptionalNumber] = Field(default_factory=dict)
    steps_run: Count = measured(0, column_name=True)
    #: Gradient evaluations: calls of the closure that ran backward (a closure that builds
    #: a graph for Hessian-vector products counts ``GRAPH_EVAL_COST``).
    grad_evals: Count = measured(0, column_name=True)
    #: Gradient evaluations until the training loss first reached the metric's target.
    evals_to_target: Count | None = measured(None, column_name=True)
    #: ``step``, ``loss`` and ``grad_evals`` per kept step (the worker's), ``eval_step`` and
    #: ``eval_<metric>`` per evaluation point (the driver's evaluation).
    curve: dict[StrictStr, list[OptionalNumber]] = measured(default_factory=dict)
    time_per_step: Number = measured(math.nan, column_name=True)
    #: Seconds of the first steps (compilation, first allocations), not in ``time_per_step``.
    warmup_time: Number = measured(math.nan)
    #: Seconds inside ``optimizer.step`` over the whole run.
    train_time: Number = measured(math.nan)
    state_bytes: Count = measured(0, column_name=True)
    #: Bytes of the trained parameters (from the states the driver evaluated).
    param_bytes: Count = column(default=0)
    #: What the worker's own check found changed in its process's global state.
    global_state_changes: list[StrictStr] = measured(default_factory=list)
    error: StrictStr | None = measured(None)
    #: The driver's clock: from handing the run to a worker to receiving its report (the
    #: driver's evaluation of its points comes after).
    wall_time: Number = column(default=math.nan)
    #: The driver's clock, on the first run a training worker made: from starting the
    #: worker (sandbox, interpreter, imports) to its saying it was ready; NaN on later runs.
    worker_start: Number = column(default=math.nan)
    #: The driver's clock, after ``wall_time``: evaluating the run's points and scoring them
    #: (``assemble_result``), while the worker waits for its next run. NaN where no report
    #: was evaluated (a killed or lost worker) and in runs recorded before it was measured.
    eval_time: Number = column(default=math.nan)
    #: The driver's reading of the worker's resident memory, at its largest during the run.
    peak_rss_bytes: Count | None = column("peak_rss", default=None)
    #: The end of what the run printed (bounded), and how many bytes it printed.
    output_tail: StrictStr = ""
    output_bytes: Count = 0
    #: How the worker was confined ("none" where it was not).
    sandbox: StrictStr = column(default="none")
    #: Why the run cannot be trusted (integrity checks that failed), or ``None``.
    invalid: StrictStr | None = column(default=None)
    #: Where it ran: code version, library versions, device, machine label (no host name).
    env: dict[StrictStr, Any] = Field(default_factory=dict)
    #: When the driver wrote the run (ISO 8601, UTC).
    created: Time = column(default="")

    @property
    def failed(self) -> bool:
        """No measurement (``error``, ``timeout``, ``out_of_memory``); a diverged run is one."""
        return self.status in FAILED_STATUSES

    @property
    def key(self) -> str:
        return run_key(self.spec)

    def to_document(self) -> dict[str, Any]:
        """The run file's JSON document: the schema version, the run key, the fields, and the
        digest of all of them (``document_digest``)."""
        body = {"schema_version": SCHEMA_VERSION, "run_key": self.key,
                **encode_floats(self.model_dump(mode="json"))}
        return {**body, "digest": document_digest(body)}


def document_digest(body: dict[str, Any]) -> str:
    """sha256 of a run document's canonical JSON without its ``digest`` field: a file whose
    digest no longer matches was changed after the driver wrote it."""
    content = {k: v for k, v in body.items() if k != "digest"}
    # A document holds no non-finite float (they are strings in it: ``encode_floats``, and
    # JSON has none), so its canonical text is a plain sorted dump; one that does is refused.
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def first_line(text: str | None) -> str | None:
    """The first non-empty line of an error (its root cause), or ``None``."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return None


# --------------------------------------------------------------------------- the message


def measured_fields(model: type[BaseModel]) -> dict[str, Any]:
    """The fields of ``model`` declared with ``measured``, as ``create_model`` takes them."""
    return {name: (info.annotation, info) for name, info in model.model_fields.items()
            if (info.json_schema_extra or {}).get("measured")}


def report_model(model: type[BaseModel]) -> type[BaseModel]:
    """The training worker's message for runs of ``model``: its ``measured`` fields only."""
    report = create_model(f"{model.__name__}Report", __base__=_ReportBase,
                          **measured_fields(model))
    report.__doc__ = (f"What a training worker reports of one run: the measured fields of "
                      f"``{model.__name__}``, nothing else.")
    return report


#: The curves a training worker reports (the evaluation curves are the driver's).
TRAINING_CURVES = ("step", "loss", "grad_evals")


class _ReportBase(_Model):
    def check(self, spec: RunSpec, max_evals: int) -> list[str]:
        """What in this report contradicts the driver's spec or the run's rules: each a
        reason the run is invalid (empty when it is consistent)."""
        problems = []
        steps_run, evals = self.steps_run, self.grad_evals  # type: ignore[attr-defined]
        if evals > max_evals:
            problems.append(f"reported {evals} gradient evaluations, over the budget's "
                            f"{max_evals}")
        if steps_run > max(max_evals, 0):
            problems.append(f"reported {steps_run} steps, more than the budget's {max_evals} "
                            "gradient evaluations allow")
        # (A diverged run's last step found its loss non-finite before any gradient.)
        if evals < steps_run - (self.status == "diverged"):  # type: ignore[attr-defined]
            problems.append(f"reported {steps_run} steps but only {evals} gradient evaluations")
        curve = self.curve  # type: ignore[attr-defined]
        if set(curve) - set(TRAINING_CURVES):
            problems.append(f"reported curves {sorted(set(curve) - set(TRAINING_CURVES))}: a "
                            f"worker reports only {list(TRAINING_CURVES)}")
        lengths = {len(curve.get(k, [])) for k in TRAINING_CURVES}
        if len(lengths) > 1:
            problems.append("the training curve's step, loss and grad_evals differ in length")
        for name in ("time_per_step", "warmup_time", "train_time"):
            value = getattr(self, name)
            if not (math.isnan(value) or 0.0 <= value < math.inf):
                problems.append(f"{name} {value} is not a duration")
        return problems


#: The training worker's message to the driver: exactly the ``measured`` fields of
#: ``RunResult`` (the driver adds the rest). Evaluation points travel beside it.
TrainingReport = report_model(RunResult)


# --------------------------------------------------------------------------- the table


def declared_columns(model: type[BaseModel]) -> dict[str, Callable[[Any], Any]]:
    """Columns declared on the fields of ``model`` and of the models it holds, with how to
    read each from an instance."""
    found: dict[str, Callable[[Any], Any]] = {}

    def walk(model: type[BaseModel], path: tuple[str, ...]) -> None:
        for name, info in model.model_fields.items():
            where = path + (name,)
            label = (info.json_schema_extra or {}).get("column")
            if label:
                found[name if label is True else label] = _getter(where)
            annotation = info.annotation
            for candidate in (annotation, *getattr(annotation, "__args__", ())):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    walk(candidate, where)

    walk(model, ())
    return found


def _getter(path: tuple[str, ...]) -> Callable[[RunResult], Any]:
    def read(result: RunResult) -> Any:
        value: Any = result
        for part in path:
            value = getattr(value, part, None) if value is not None else None
        return value

    return read


def _machine(result: RunResult) -> str:
    """Where a run was made (its device and machine label): overheads compare runs of one."""
    env = result.env
    return f"{env.get('device') or '?'} @ {env.get('machine') or '?'}"


def _evals_per_step(result: RunResult) -> float:
    return result.grad_evals / result.steps_run if result.steps_run else math.nan


def _initial_score(result: RunResult) -> float:
    if result.metric is None:
        return math.nan
    value = result.initial_metrics.get(result.metric.name)
    return math.nan if value is None else float(value)


#: Columns computed from several fields.
_COMPUTED: dict[str, Callable[[RunResult], Any]] = {
    "config_key": lambda r: config_key(r.spec.hparams),
    "machine": _machine,
    "evals_per_step": _evals_per_step,
    "initial_score": _initial_score,
    "error_line": lambda r: first_line(r.error),
    "run_key": lambda r: r.key,
}


def column_readers(model: type[BaseModel]) -> dict[str, Callable[[Any], Any]]:
    """Every column of the runs table of ``model``'s results, in order: the declared ones,
    then the computed ones."""
    return {**declared_columns(model), **_COMPUTED}


_READERS = column_readers(RunResult)
#: The runs table's columns, in order; the store adds ``file``, ``modified`` and ``verified``.
COLUMNS: tuple[str, ...] = tuple(_READERS)


def table_row(result: RunResult) -> dict[str, Any]:
    """One row of the runs table: every column of its model (``column_readers``)."""
    readers = _READERS if type(result) is RunResult else column_readers(type(result))
    row = {name: read(result) for name, read in readers.items()}
    for name in ("evals_to_target", "target"):
        row[name] = math.nan if row[name] is None else float(row[name])
    return row
