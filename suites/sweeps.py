"""What the sweep commands of ``lsb`` share: choosing tasks, loading submissions (read
from their text, validated in sandboxed workers, names checked as identities), building
the executor, and running a sweep with its estimate and summary. The commands themselves
are in ``suites.cli``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from suites import console
from suites.api import TIME_LIMITS, VALIDATION_TIMEOUT
from suites.console import EXIT_RUNS_FAILED


class UsageError(Exception):
    """Wrong arguments or an invalid submission: printed, exit code 2."""


def results_root(args: argparse.Namespace) -> Path:
    from suites.results import default_root

    return Path(args.results) if args.results else default_root()


def load_submissions(args: argparse.Namespace, paths: list[Path], tasks):
    """The submissions as their files declare them (read, never run, in this process:
    ``describe_submission``), after each was validated in a subprocess on ``tasks``'
    parameter layouts; ``UsageError`` naming every problem.

    Each submission file gets an interpreter of its own; the built-in optimizers, the
    project's own files, share one. Names are identities (``_check_names``).
    """
    from suites import registry
    from suites.submission import InvalidSubmission, describe_submission
    from suites.validation import validate_in_subprocess

    described, problems = [], []
    for path in paths:
        try:
            described.append(describe_submission(path))
        except InvalidSubmission as err:
            problems += err.problems
    if not problems:
        builtin = {p.resolve() for p in registry.builtin_optimizer_paths().values()}
        timeout = getattr(args, "validation_timeout", None) or VALIDATION_TIMEOUT
        startups: list[float] = []
        problems += validate_in_subprocess([p for p in paths if p.resolve() in builtin],
                                           tasks, timeout, shared=True, startups=startups)
        problems += validate_in_subprocess([p for p in paths if p.resolve() not in builtin],
                                           tasks, timeout, startups=startups)
        args.startup_seconds = max(startups, default=0.0)
    if problems:
        raise UsageError("invalid submission:\n" + "\n".join(f"  {p}" for p in problems))
    _check_names(described, results_root(args), getattr(args, "new_version", False))
    return described


def _check_names(submissions, root: Path, new_version: bool) -> None:
    """Names are identities: a built-in's name belongs to its file; a name whose runs in the
    results were made from another source needs ``--new-version`` to be superseded; two
    files may not share a name."""
    from suites import registry
    from suites.results import ResultStore

    names = [s.name for s in submissions]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"several files define the optimizer name(s) {repeated}: rename them")
    builtins = registry.builtin_optimizer_paths()
    store = ResultStore(root)
    for submission in submissions:
        own = builtins.get(submission.name)
        if own is not None and own.resolve() != Path(submission.path).resolve():
            raise UsageError(f"{submission.path}: the name {submission.name!r} belongs to a "
                             "built-in optimizer: rename yours")
        others = sorted(h for h in store.source_hashes(submission.name)
                        if h != submission.source_hash)
        if others and not new_version:
            raise UsageError(
                f"{submission.path}: the results in {root}/ hold runs of another version of "
                f"{submission.name!r} (source {', '.join(others)}); this file (source "
                f"{submission.source_hash}) would supersede them. Pass --new-version to rank "
                "this version instead (the site lists the superseded ones), or rename it.")


def select_tasks(selectors: list[str]):
    from suites import registry

    try:
        return registry.tasks_for(selectors)
    except ValueError as err:
        raise UsageError(str(err)) from err


def tasks_with_data(tasks, budget: str):
    """The tasks whose data are here; each other one is named with what it needs."""
    from suites import registry

    ready = []
    for task in tasks:
        missing = registry.missing_data(task, budget)
        if missing is None:
            ready.append(task)
        else:
            print(f"skipping {task.name} (needs data): " + missing.replace("\n", "\n    "),
                  file=sys.stderr)
    if tasks and not ready:
        raise UsageError(f"no selected task has its data at the {budget!r} budget (see above)")
    return ready


def _variants(args: argparse.Namespace, tasks, budget: str):
    """The held-out variants of ``tasks`` that a sweep evaluates (none with
    ``--no-variants``), those whose data are here."""
    from suites import registry

    if getattr(args, "no_variants", False):
        return []
    return [v for v in registry.variants_for(tasks) if registry.missing_data(v, budget) is None]


def sweep(args: argparse.Namespace, tasks, submissions, budget: str):
    from suites.estimate import estimate
    from suites.executors import ClusterLost
    from suites.results import ResultStore, StoreError
    from suites.tuning import run_sweep

    root = results_root(args)
    time_limit = args.time_limit if args.time_limit is not None else TIME_LIMITS[budget]
    seeds = getattr(args, "seeds", None)
    kind = getattr(args, "executor", "local")
    jobs = args.jobs if args.jobs is not None or kind != "local" else default_jobs()
    configs = sum(len(s.configs()) for s in submissions)
    where = f"-j {jobs}" if kind == "local" else f"on {kind}" + (f", -j {jobs}" if jobs else "")
    print(
        f"{len(tasks)} tasks x {len(submissions)} optimizers ({configs} configs) at the "
        f"{budget!r} budget, {where}, time limit {time_limit:g} s per run, results in {root}/"
    )
    variants = _variants(args, tasks, budget)
    console.print_estimate(estimate(ResultStore(root), tasks, submissions, budget,
                                    seeds=tuple(seeds) if seeds else None, jobs=jobs or 1,
                                    track=getattr(args, "track", "external"),
                                    variants=variants,
                                    startup_seconds=getattr(args, "startup_seconds", 0.0),
                                    after=getattr(args, "after_sweep", None)),
                           jobs or 1)
    started = time.perf_counter()
    with _executor(args, kind, jobs, time_limit, root) as executor:
        try:
            report = run_sweep(
                tasks, submissions, budget,
                store=ResultStore(root),
                executor=executor,
                seeds=tuple(seeds) if seeds else None,
                retry_failed=getattr(args, "retry_failed", False),
                track=getattr(args, "track", "external"),
                variants=variants,
            )
        except StoreError as err:
            raise UsageError(str(err)) from err
        except ClusterLost as err:
            print(f"lsb: error: {err}\nfinished runs are saved; the same command resumes the "
                  "sweep", file=sys.stderr)
            raise SystemExit(EXIT_RUNS_FAILED) from err
    report.seconds = time.perf_counter() - started
    console.print_skipped(report.skipped)
    diverged = sum(r.status == "diverged" for r in report.results)
    phases = ", ".join(f"{n} {phase}" for phase, n in report.made_by_phase.items())
    print(
        f"{report.runs_made} runs made, {report.runs_reused} found in the results store, "
        f"{diverged} diverged, in {report.seconds:.1f} s"
        + (f" (made: {phases})" if phases else "")
    )
    return report


#: Options that not every executor reads: their flags and the executors that read them.
_EXECUTOR_OPTIONS = {
    "address": ("--address", ("ray",)),
    "partition": ("--partition", ("slurm",)),
    "slurm_time": ("--time", ("slurm",)),
    "gpus_per_run": ("--gpus-per-run", ("ray", "slurm")),
    "retries": ("--retries", ("ray", "slurm")),
}


def _executor(args: argparse.Namespace, kind: str, jobs: int | None, time_limit: float,
              root: Path):
    """The executor ``--executor`` names; ``UsageError`` for an option it does not read."""
    from suites import executors

    given = {k: getattr(args, k) for k in _EXECUTOR_OPTIONS if getattr(args, k, None) is not None}
    for option in given:
        flag, readers = _EXECUTOR_OPTIONS[option]
        if kind not in readers:
            raise UsageError(f"{flag} is an option of --executor {' and '.join(readers)}")
    if given.get("gpus_per_run", 0) < 0 or given.get("retries", 0) < 0:
        raise UsageError("--gpus-per-run and --retries must be at least 0")
    cluster = {"retries": given["retries"]} if "retries" in given else {}
    gpus = given.get("gpus_per_run", 0)
    try:
        if kind == "ray":
            return executors.RayExecutor(root, time_limit, address=given.get("address"),
                                         num_cpus=jobs, gpus_per_run=gpus,
                                         memory_limit=memory_limit(args), **cluster)
        if kind == "slurm":
            if gpus != int(gpus):
                raise UsageError("--gpus-per-run must be a whole number on Slurm")
            return executors.SlurmExecutor(
                root, time_limit, partition=given.get("partition"),
                time_min=given.get("slurm_time"), gpus_per_run=int(gpus),
                array_parallelism=jobs, memory_limit=memory_limit(args), **cluster,
            )
    except (executors.MissingExtra, RuntimeError, ConnectionError) as err:
        raise UsageError(str(err)) from err
    if getattr(args, "in_process", False):
        print("lsb: warning: --in-process makes every run in this process, one after "
              "another: nothing isolates one optimizer's runs from another's, and a run that "
              "hangs or ends the process stops the sweep. Use it to debug, not to rank.",
              file=sys.stderr)
        return executors.LocalExecutor(1, time_limit, in_process=True)
    return executors.LocalExecutor(jobs, time_limit, memory_limit=memory_limit(args),
                                   reap_orphans=args.owns_children)


def memory_limit(args: argparse.Namespace) -> int:
    """``--memory-limit`` in bytes (default: ``DEFAULT_MEMORY_LIMIT``)."""
    from suites.executors.local import DEFAULT_MEMORY_LIMIT

    gib = getattr(args, "memory_limit", None)
    return DEFAULT_MEMORY_LIMIT if gib is None else int(gib * 2**30)


def default_jobs() -> int:
    from suites.executors.local import default_jobs

    return default_jobs()


