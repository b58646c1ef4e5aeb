"""Validating submission files before any run: on the real tasks' parameter layouts, in a
sandboxed worker process per file.

``validate_submission`` imports a file (``suites.submission.load_submission``), checks
that its declarations read the same when it runs as they are written
(``describe_submission``), builds the optimizer for every configuration on the real
parameter layout of each selected suite and takes one step with it. The driver runs it in
a sandboxed worker process per file (``validate_in_subprocess``), so that a file that
crashes, hangs or changes global state at import touches neither the driver nor another
submission, and reads the worker's answer as untrusted data. ``python -m
suites.validation PATH ...`` validates files here and now.

Every problem is reported as ``file:line: what is wrong. How to fix it.``
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict

from suites.api import VALIDATION_TIMEOUT, Submission
from suites.submission import (
    InvalidSubmission,
    SubmissionProblem,
    _definition_lines,
    _line_in_file,
    declaration_mismatches,
    describe_submission,
    load_submission,
)
from suites.training import as_optimizer, optimizer_param_groups, seed_everything, set_mode

#: Resident memory the validating process may use.
VALIDATION_MEMORY_LIMIT = 8 << 30


@dataclass(frozen=True)
class Layout:
    """Parameter groups to validate an optimizer on, and a loss over them: a tiny model's,
    or a task's real ones (``task_layouts``). ``where`` names it in a problem."""

    where: str
    groups: list[dict[str, Any]]
    loss: Callable[[], torch.Tensor]


def tiny_layout() -> Layout:
    """One group of a named 2-D weight and 1-D bias."""
    generator = torch.Generator().manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(4, 3, generator=generator))
    bias = torch.nn.Parameter(torch.randn(3, generator=generator))
    return Layout("a tiny model (one group: a 4×3 weight and a bias)",
                  [{"params": [weight, bias], "param_names": ["weight", "bias"]}],
                  lambda: (weight.sum(1) + bias.sum()).pow(2).mean() + 1.0)


def describe_groups(groups: Sequence[dict[str, Any]]) -> str:
    """A task's parameter layout in a few words: per group, its tensors' shapes and dtypes
    and the keys it sets (``lr_scale``, ``weight_decay``…)."""
    parts = []
    for group in groups:
        params = group["params"]
        params = list(params) if isinstance(params, (list, tuple)) else [params]
        kinds: dict[str, int] = {}
        for param in params:
            kind = f"{param.dim()}-D {str(param.dtype).removeprefix('torch.')}"
            kinds[kind] = kinds.get(kind, 0) + 1
        keys = [f"{k}={group[k]}" for k in sorted(group) if k not in ("params", "param_names")]
        parts.append(", ".join(f"{n}× {k}" for k, n in sorted(kinds.items())) +
                     (f" ({', '.join(keys)})" if keys else ""))
    return f"{len(groups)} group{'s' * (len(groups) != 1)}: " + "; ".join(
        f"[{part}]" for part in parts)


def task_layouts(tasks: Sequence[Any]) -> list[Layout]:
    """The distinct real parameter layouts of ``tasks`` (their smoke problems): one layout
    per suite and shape of groups, the first task that has it standing for the others."""
    layouts, seen = [], set()
    for task in tasks:
        seed_everything(task.name, 0)
        problem = task.setup(0, "smoke")
        groups = problem.param_groups
        signature = (task.suite, describe_groups(groups))
        if signature in seen:
            continue
        seen.add(signature)
        layouts.append(Layout(f"suite {task.suite}, the layout of {task.name} "
                              f"({describe_groups(groups)})", groups,
                              lambda problem=problem: problem.loss(0)))
    return layouts


def validate_submission(path: str | Path, tasks: Sequence[Any] = ()) -> list[SubmissionProblem]:
    """Everything wrong with a submission file; an empty list means it is ready to run.

    Beyond ``load_submission``'s checks (``requires`` included) and a check that the
    file's declarations read the same when it runs as they are written, builds the
    optimizer for every configuration on the real parameter layout of each suite of
    ``tasks`` (their groups, names, step-size scales and tensor kinds; a tiny model when
    no task is given), and takes one ``step(closure)`` on each (its closure builds a graph
    of the gradients where the file sets ``create_graph = True``).
    """
    path = Path(path)
    try:
        submission = load_submission(path)
        described = describe_submission(path)
    except InvalidSubmission as err:
        return err.problems
    changed = declaration_mismatches(described, submission)
    lines = _definition_lines(path)
    if changed:
        return [SubmissionProblem(str(path), lines.get(changed[0], 1),
                                  f"{', '.join(f'`{n}`' for n in changed)} read differently "
                                  "when the file runs than as written: declare them once, as "
                                  "literals, and leave them alone at import.")]
    build_line = lines.get("build", 1)
    for layout in task_layouts(tasks) or [tiny_layout()]:
        for config in submission.configs():
            problem = _build_and_step(submission, config, build_line, layout)
            if problem is not None:
                return [problem]
    return []


def _build_and_step(
    submission: Submission, config: dict[str, Any], build_line: int, layout: Layout
) -> SubmissionProblem | None:
    """Build one configuration on ``layout``'s groups (the step-size scales applied as a run
    applies them) and take one step."""
    path = Path(submission.path)
    groups = optimizer_param_groups(layout.groups, config, submission.lr_key)
    try:
        built = submission.build(groups, **config)
    except Exception as err:  # noqa: BLE001
        return SubmissionProblem(
            str(path), _line_in_file(err, path) or build_line,
            f"on {layout.where}: build(param_groups, **{config}) raised "
            f"{type(err).__name__}: {err}. Fix build so it works for every configuration of "
            "the search space on every task's parameter groups.",
        )
    try:
        optimizer = as_optimizer(built)
    except TypeError as err:
        return SubmissionProblem(
            str(path), build_line,
            f"build(param_groups, **{config}): {err}, built on param_groups.",
        )
    calls = 0

    def closure() -> torch.Tensor:
        nonlocal calls
        calls += 1
        optimizer.zero_grad()
        loss = layout.loss()
        loss.backward(create_graph=submission.create_graph)
        return loss

    try:
        set_mode(optimizer, "train")  # as the runner does (the schedule-free convention)
        optimizer.step(closure)
    except Exception as err:  # noqa: BLE001
        return SubmissionProblem(
            str(path), _line_in_file(err, path) or build_line,
            f"on {layout.where}: optimizer.step(closure) with {config} raised "
            f"{type(err).__name__}: {err}. The runner calls step(closure); the closure zeroes "
            "the gradients, computes the loss, backpropagates and returns the loss.",
        )
    if calls == 0:
        return SubmissionProblem(
            str(path), build_line,
            f"optimizer.step(closure) with {config} never called the closure, so no "
            "gradient was computed. Call it: `loss = closure()` under torch.enable_grad().",
        )
    return None


class _Report(BaseModel):
    """The validating process's report, as the caller parses it (untrusted: that process
    ran the file)."""

    model_config = ConfigDict(extra="forbid")

    class File(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str
        problems: list[SubmissionProblem]

    files: list[File]


def validate_in_subprocess(
    paths: Sequence[str | Path], tasks: Sequence[Any] = (),
    timeout: float = VALIDATION_TIMEOUT, *, shared: bool = False,
    startups: list[float] | None = None,
) -> list[SubmissionProblem]:
    """``validate_submission`` of each file in a fresh interpreter of its own (``shared``:
    all of them in one, for files that trust each other, such as the built-ins), on the
    layouts of ``tasks`` (task objects, sent pickled; one that cannot be pickled is looked
    up by name in the registry there): the problems found. ``startups`` collects, per
    interpreter, the seconds from its start until it had imported torch and the engine
    (what every worker of a sweep pays once; the sweep's estimate counts it).

    A file that crashes or hangs at import cannot hurt the caller: the subprocess is
    reported as a problem of the file if it exits without a report or runs past
    ``timeout``. The answers come back in a report file, not on standard output, so a file
    may print what it likes; the report is read as untrusted input (a strict schema), and
    what the caller runs is decided by ``describe_submission``, never by the report.
    """
    given = {str(Path(p).resolve()): str(p) for p in paths}
    groups = [list(given)] if shared else [[p] for p in given]
    problems = []
    for group in filter(None, groups):
        problems += _validate_group(group, list(tasks), timeout, startups)
    # The worker was given whole paths (its working directory is its scratch): report the
    # files as the caller named them.
    return [SubmissionProblem(given.get(p.path, p.path), p.line, _as_given(p.message, given))
            for p in problems]


def _as_given(text: str, given: dict[str, str]) -> str:
    for absolute, name in given.items():
        text = text.replace(absolute, name)
    return text


def _picklable(task: Any) -> Any:
    try:
        pickle.dumps(task)
    except Exception:  # noqa: BLE001 -- looked up by name instead
        return task.name
    return task


def _validate_group(paths: list[str], tasks: list[Any], timeout: float,
                    startups: list[float] | None = None) -> list[SubmissionProblem]:
    """Validate ``paths`` in one sandboxed worker process (``suites.worker_process``), its
    answer read as untrusted data."""
    from suites import registry
    from suites.sandbox import default_policy, landlock_abi
    from suites.worker_process import (
        UntrustedMessage,
        WorkerProcess,
        WorkerStartError,
        inherited_environment,
    )

    path = ", ".join(paths)
    with tempfile.TemporaryDirectory(prefix="lsb-validate-") as scratch:
        reads = [str(Path(p).resolve().parent) for p in paths]
        reads += [str(d) for d in registry.data_directories()]
        policy = default_policy(scratch, read=reads) if landlock_abi() else None
        task_blob = pickle.dumps([_picklable(t) for t in tasks])
        started = time.monotonic()
        try:
            worker = WorkerProcess("suites.validation:serve_validation", (paths, task_blob),
                                   policy=policy, env=inherited_environment(),
                                   memory_limit=VALIDATION_MEMORY_LIMIT)
        except WorkerStartError as err:
            return [SubmissionProblem(path, 0, f"the validating process did not start: {err}")]
        start = worker.mark()
        try:
            if worker.recv(timeout) != "imported":
                raise UntrustedMessage("the validating process did not say it had started")
            if startups is not None:
                startups.append(time.monotonic() - started)
            answer = worker.recv(timeout)
        except TimeoutError:
            return [SubmissionProblem(
                path, 0,
                f"validation did not finish within {timeout:g} s (--validation-timeout). "
                "Importing the file, building the optimizer and taking one step on each "
                "task's parameters must be quick; move long work out of module level, or give "
                "it more time with --validation-timeout S.",
            )]
        except (EOFError, UntrustedMessage) as err:
            worker.stop(grace=0)
            detail = [line for line in worker.output_since(start).splitlines()
                      if line.strip()]
            return [SubmissionProblem(
                path, 0,
                f"the validating process exited with code {worker.exitcode} before it "
                f"reported ({err}): the file ends its interpreter (os._exit, a crash at "
                f"import){': ' + detail[-1][:300] if detail else ''}. Run "
                f"`python -m suites.validation {' '.join(paths)}` to see the whole "
                "error.",
            )]
        finally:
            worker.stop(grace=1.0)
    try:
        files = _Report.model_validate({"files": answer}).files
    except ValueError:
        return [SubmissionProblem(path, 0, "the validating process sent a malformed report: "
                                           "the file tampers with its validation")]
    return [p for answer in files for p in answer.problems]


def serve_validation(channel: Any, paths: list[str], task_blob: bytes) -> None:
    """The validating worker (``suites.worker_process``'s target): validate ``paths`` on
    the tasks' layouts, answer with each file's problems as plain data."""
    from suites import registry

    channel.send("imported")
    tasks = [registry.get_task(t) if isinstance(t, str) else t
             for t in pickle.loads(task_blob)]
    channel.send([{"path": path, "problems": [asdict(p) for p in
                                               validate_submission(path, tasks)]}
                  for path in paths])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m suites.validation",
        description="Check submission files here and now: import, build the optimizer on "
                    "the tasks' parameter layouts, take a step.")
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument("--tasks", default="", metavar="NAMES",
                        help="comma-separated task names whose parameter layouts to "
                             "validate on (default: a tiny model)")
    args = parser.parse_args(argv)
    from suites import registry

    tasks = [registry.get_task(name) for name in args.tasks.split(",") if name]
    problems = [p for path in args.paths for p in validate_submission(path, tasks)]
    for p in problems:
        print(p)
    if not problems:
        for path in args.paths:
            submission = load_submission(path)
            print(f"{path}: ok: {submission.name!r}, {len(submission.configs())} "
                  f"configurations, source {submission.source_hash}")
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
