"""The ``lsb`` command line.

Exit codes: 0 success; 1 some runs ended in ``error`` or ``timeout`` (they are listed;
a diverged run is a measured outcome, not a failure); 2 bad usage or an invalid
submission (reported before any run starts); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import logging
import math
import platform
import signal
import sys
import time
from pathlib import Path

from suites import __version__, console
from suites.api import BUDGET_NAMES, SEEDS_PER_BUDGET, TIME_LIMITS, VALIDATION_TIMEOUT
from suites.console import EXIT_OK, duration
from suites.record import TRACKS
from suites.sweeps import (
    UsageError,
    default_jobs,
    load_submissions,
    memory_limit,
    results_root,
    select_tasks,
    sweep,
    tasks_with_data,
)

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell's code for Ctrl-C


# --------------------------------------------------------------------------- commands


def _cmd_doctor(args: argparse.Namespace) -> int:
    import torch

    from kernels.backend import backend_settings

    print(f"lsb          {__version__}")
    print(f"python       {platform.python_version()} ({platform.machine()})")
    print(f"torch        {torch.__version__}")
    try:
        import triton

        print(f"triton       {triton.__version__}")
    except ImportError:
        print("triton       not installed (the Triton backends are unavailable)")
    cuda = torch.cuda.is_available()
    print(f"cuda         {'yes: ' + torch.cuda.get_device_name(0) if cuda else 'no'}")
    failed = False
    for family, setting in backend_settings().items():
        value = setting["value"] or "unset (auto)"
        print(f"{family + ' backend':14s}${setting['variable']} = {value}; valid: "
              f"{', '.join(setting['valid'])}")
        if setting.get("error"):
            failed = True
            print(f"{'':14s}error: {setting['error']}")
        else:
            print(f"{'':14s}on {setting['device']} tensors this runs: {setting['auto']}")
    return EXIT_USAGE if failed else EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    from suites import registry
    from suites.submission import load_submission

    tasks = registry.all_tasks()
    suites = sorted({t.suite for t in tasks}, key=lambda s: [t.suite for t in tasks].index(s))
    print(f"suites: {', '.join(suites) or 'none installed'}")
    for suite in suites:
        print(f"\n{suite}:")
        for t in (t for t in tasks if t.suite == suite):
            b = t.budgets
            direction = "higher is better" if t.metric.higher_is_better else "lower is better"
            print(
                f"  {t.name:32s} {t.metric.name} ({direction}); steps "
                f"{b.smoke}/{b.quick}/{b.full} (smoke/quick/full)"
            )
            missing = {budget: registry.missing_data(t, budget) for budget in BUDGET_NAMES}
            absent = [budget for budget, message in missing.items() if message]
            if absent:  # the message's first and last lines: what is missing, how to get it
                lines = missing[absent[0]].strip().splitlines()
                summary = lines[0].removesuffix("; looked for:")
                how = f"\n{'':37s}{lines[-1]}" if len(lines) > 1 else ""
                print(f"  {'':32s} needs data for {'/'.join(absent)}: {summary}{how}")
    print("\noptimizers:")
    for name, path in registry.builtin_optimizer_paths().items():
        submission = load_submission(path)
        summary = console.headline(submission.description)
        print(f"  {name:14s} {len(submission.configs())} configs  {summary}")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from suites import registry

    tasks = select_tasks(args.selectors)
    try:
        paths = [registry.resolve_optimizer(o) for o in args.optimizer] if args.optimizer \
            else list(registry.builtin_optimizer_paths().values())
    except ValueError as err:
        raise UsageError(str(err)) from err
    if not paths:
        raise UsageError("no optimizers: name them with --optimizer")
    tasks = tasks_with_data(tasks, args.budget)
    submissions = load_submissions(args, paths, tasks)
    report = sweep(args, tasks, submissions, args.budget)
    console.print_leaderboard(results_root(args), args.budget, sorted({t.suite for t in tasks}),
                              args.track)
    return console.report_failures(report.failures, args.argv)


def _cmd_submit(args: argparse.Namespace) -> int:
    from suites import registry

    tasks = select_tasks(args.selectors) if args.selectors else registry.all_tasks()
    report, submission = _submit(args, Path(args.path), tasks, args.budget)
    root = results_root(args)
    print(f"\nsee it on the site: lsb site build --results {root} --budget {args.budget}, "
          "then open site/build/index.html")
    return console.report_failures(report.failures, args.argv)


def _submit(args: argparse.Namespace, path: Path, tasks, budget: str):
    """Validate one submission, sweep it over ``tasks`` and print its ranks."""
    from suites import leaderboard
    from suites.estimate import SUBMIT_TABLES

    if not tasks:
        raise UsageError("no task suites are installed")
    tasks = tasks_with_data(tasks, budget)
    if getattr(args, "after_sweep", None) is None:
        args.after_sweep = {"the tables": SUBMIT_TABLES}
    (submission,) = load_submissions(args, [path], tasks)
    report = sweep(args, tasks, [submission], budget)

    runs = leaderboard.load_runs(results_root(args), args.track)
    table = leaderboard.task_table(runs, budget)
    counts = table.groupby("task")["optimizer"].size()
    mine = table[table["optimizer"] == submission.name].assign(
        rank=lambda t: [f"{k}/{counts[task]}" for k, task in zip(t["rank"], t["task"],
                                                                    strict=True)]
    )
    print(f"\n== {submission.name} ({submission.source_hash}) per task, budget {budget} ==")
    print(console.as_text(
        mine[["task", "config_key", "score_mean", "score_std", "success_rate", "rank"]]))
    overall = leaderboard.overall_table(runs, budget)
    row = overall[overall["optimizer"] == submission.name]
    if len(row):
        print(f"\n== {submission.name} overall: rank {row['tied_rank'].iloc[0]} of "
              f"{len(overall)} ({leaderboard.rank_groups(overall['tied_rank'])} rank groups) ==")
        print(console.as_text(row))
    console.print_coverage(table)
    return report, submission


def _cmd_show(args: argparse.Namespace) -> int:
    from suites import leaderboard, site_data

    root = results_root(args)
    if args.kernels:
        return console.print_kernels(root)
    runs = leaderboard.load_runs(root, args.track)
    budget = args.budget or site_data.site_budget(runs) or "quick"
    if args.variants:
        return console.print_variants(runs, budget)
    if not console.print_leaderboard(root, budget, args.suite, args.track, runs):
        evaluated = runs[runs["phase"] == "eval"] if not runs.empty else runs
        if args.suite and not evaluated.empty:
            evaluated = evaluated[evaluated["suite"].isin(args.suite)]
        others = site_data.budget_counts(evaluated) if not evaluated.empty else {}
        if not others:
            print(f"no {budget!r} evaluation runs in {root}/: run `lsb demo` or `lsb run`")
            return EXIT_OK if args.budget is None else EXIT_USAGE
        listed = ", ".join(f"{name} ({count} evaluation runs)" for name, count in others.items())
        print(f"lsb: error: no {budget!r} evaluation runs in {root}/; the budgets with some: "
              f"{listed}. Pass one with --budget.", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    """Re-run recorded runs from their spec and compare every recorded value: exit 1 on any
    difference (shown) or on a file that cannot be re-run."""
    from suites import verify
    from suites.executors import LocalExecutor
    from suites.results import ResultStore

    store = ResultStore(results_root(args))
    files = verify.sample(verify.run_files(store, args.paths), args.sample, args.seed)
    if not files:
        print(f"no run files to verify in {store.runs_dir}/")
        return EXIT_OK
    jobs = args.jobs or default_jobs()
    print(f"verifying {len(files)} run files by re-running them, -j {jobs}"
          + (f", relative tolerance {args.tolerance:g}" if args.tolerance else ", bitwise"))
    with LocalExecutor(jobs, args.time_limit, memory_limit=memory_limit(args),
                       reap_orphans=args.owns_children) as executor:
        verdicts = verify.verify(store, files, executor, tolerance=args.tolerance,
                                 record=not args.no_record)
    return console.print_verdicts(verdicts)


def _cmd_demo(args: argparse.Namespace) -> int:
    """Submit the site's example optimizer, live, against the committed results of the
    built-ins on every suite's demo tasks at the quick budget; then build the site."""
    from suites import registry, sitegen
    from suites.estimate import DEMO_SITE

    known = {t.name for t in registry.all_tasks()} | set(registry.available_suites())
    selectors = [s for s in registry.demo_plan() if s in known]
    if not selectors:
        raise UsageError("no installed suite names demo tasks (DEMO_TASKS)")
    args.seeds = None
    args.after_sweep = {"the tables and the site": DEMO_SITE}
    started = time.perf_counter()
    report, submission = _submit(args, sitegen.EXAMPLE_SUBMISSION,
                                 registry.tasks_for(selectors), "quick")
    root = results_root(args)
    site_started = time.perf_counter()
    try:
        index = sitegen.build_site(root, budget="quick")
    except sitegen.SiteError as err:
        raise UsageError(str(err)) from err
    ended = time.perf_counter()
    print(f"\ndemo: {report.runs_made} runs of {submission.name} made, "
          f"{report.runs_reused} found, in {duration(ended - started)} (the sweep "
          f"{duration(report.seconds)}, the site {duration(ended - site_started)})")
    print(f"site: open file://{index.resolve()}")
    return console.report_failures(report.failures, args.argv)


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lsb",
        description="LandscapeBench: optimizers on challenging landscapes, and their kernels.",
    )
    parser.add_argument("--version", action="version", version=f"lsb {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    from suites import registry

    for _, add_options in registry.hooks("add_options"):
        add_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def sweep_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--budget", choices=BUDGET_NAMES, default="quick",
                       help="steps per run, from each task's budgets (default: quick)")
        p.add_argument("-j", "--jobs", type=int, default=None,
                       help="parallel runs, each in a sandboxed worker process (default: number "
                            "of cores; --in-process trains in this process instead)")
        p.add_argument("--time-limit", type=float, default=None, metavar="S",
                       help=f"seconds per run (default: {_per_budget(TIME_LIMITS)})")
        results_option(p)
        g = p.add_argument_group(
            "executors", "where runs execute; ray and slurm need pip install '.[ray]' or "
            "'.[slurm]', and the results directory on a file system every worker shares")
        p.add_argument("--retry-failed", action="store_true",
                       help="make the runs stored as error or timeout again (others are reused)")
        p.add_argument("--memory-limit", type=float, default=None, metavar="GIB",
                       help="resident memory a training worker and the processes it starts "
                            "may use, in GiB (default 8); a run over it is out_of_memory")
        p.add_argument("--no-variants", action="store_true",
                       help="do not evaluate the tuned configurations on the suites' held-out "
                            "variant tasks")
        p.add_argument("--track", choices=TRACKS, default="external",
                       help="external: tune each optimizer's search space (default); "
                            "self-tuning: run each at its declared defaults, no tuning")
        p.add_argument("--new-version", action="store_true",
                       help="rank a changed submission file under the name its earlier version "
                            "has in the results (the earlier runs are then superseded)")
        p.add_argument("--validation-timeout", type=float, default=None, metavar="S",
                       help=f"seconds to validate each submission file (default "
                            f"{VALIDATION_TIMEOUT:g})")
        p.add_argument("--in-process", action="store_true",
                       help="debugging: make every run in this process, one after another, "
                            "with no isolation between optimizers (a warning says so)")
        g.add_argument("--executor", choices=("local", "ray", "slurm"), default="local",
                       help="local: a process pool (default); ray: one Ray task per run; "
                            "slurm: one Slurm job per run, a job array per sweep phase "
                            "(-j: runs at once, default: all)")
        g.add_argument("--address", default=None, metavar="ADDR",
                       help="ray: the cluster, 'auto' or ray://host:port (default: start Ray "
                            "on this machine with -j CPUs)")
        g.add_argument("--partition", default=None, help="slurm: the partition")
        g.add_argument("--time", dest="slurm_time", type=int, default=None, metavar="MIN",
                       help="slurm: minutes per job (default: the time limit x 1.25 + 10 s, "
                            "plus 5 minutes)")
        g.add_argument("--gpus-per-run", type=float, default=None, metavar="N",
                       help="ray, slurm: GPUs per run (Ray accepts fractions; default 0)")
        g.add_argument("--retries", type=int, default=None, metavar="N",
                       help="ray, slurm: how often a run whose worker was lost is made again "
                            "before it is recorded as an error (default 2)")

    def results_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--results", default=None, metavar="DIR",
                       help="results directory (default: $LSB_RESULTS or ./results)")

    p = sub.add_parser("doctor", help="print versions, CUDA availability and kernel backends")
    p.set_defaults(func=_cmd_doctor)
    p = sub.add_parser("list", help="list suites, tasks and built-in optimizers")
    p.set_defaults(func=_cmd_list)
    p = sub.add_parser("run", help="run suites or tasks for optimizers (tuning protocol)")
    p.add_argument("selectors", nargs="+", metavar="SUITE|TASK",
                   help="suite names, task names or globs over task names (`lsb list` shows them)")
    p.add_argument("--optimizer", action="append", metavar="NAME|PATH",
                   help="a built-in optimizer or a submission file (repeatable; default: "
                        "all built-ins)")
    p.add_argument("--seeds", type=int, nargs=2, metavar=("TUNE", "EVAL"),
                   help="numbers of tuning and evaluation seeds (default per budget: "
                        f"{_per_budget(SEEDS_PER_BUDGET)})")
    sweep_options(p)
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("submit", help="validate a submission, run suites (all by default), "
                                      "show its ranks")
    p.add_argument("path", metavar="PATH", help="the submission file (.py)")
    p.add_argument("selectors", nargs="*", metavar="SUITE|TASK",
                   help="suite names, task names or globs over task names (default: every task)")
    sweep_options(p)
    p.set_defaults(func=_cmd_submit)
    p = sub.add_parser("show", help="print the leaderboard from the results directory")
    p.add_argument("--suite", action="append", metavar="SUITE", help="only these suites")
    p.add_argument("--budget", choices=BUDGET_NAMES, default=None,
                   help="default: the largest budget with evaluation runs (the site's)")
    p.add_argument("--kernels", action="store_true",
                   help="print the kernel benchmark tables instead (results/kernels/)")
    p.add_argument("--variants", action="store_true",
                   help="the ranking on the suites' held-out variant tasks, against the public "
                        "one (Kendall tau with its bootstrap interval, each optimizer's move)")
    p.add_argument("--track", choices=TRACKS, default="external",
                   help="the track ranked (default: external tuning)")
    results_option(p)
    p.set_defaults(func=_cmd_show)
    p = sub.add_parser("verify", help="re-run recorded runs from their spec and compare every "
                                      "recorded value (exit 1 on a difference)")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="run files or directories of them (default: every run file)")
    p.add_argument("--sample", type=int, default=None, metavar="N",
                   help="verify N files drawn at random (reproducibly, --seed)")
    p.add_argument("--seed", type=int, default=0, help="the draw of --sample (default 0)")
    p.add_argument("--tolerance", type=float, default=0.0, metavar="REL",
                   help="relative tolerance for numbers (default 0: bitwise)")
    p.add_argument("--no-record", action="store_true",
                   help="do not record the verified files under <results>/verified/")
    p.add_argument("-j", "--jobs", type=int, default=None, help="parallel runs")
    p.add_argument("--time-limit", type=float, default=None, metavar="S")
    p.add_argument("--memory-limit", type=float, default=None, metavar="GIB")
    results_option(p)
    p.set_defaults(func=_cmd_verify)
    p = sub.add_parser("demo", help="submit the site's example optimizer on each suite's demo "
                       "tasks at the quick budget, against the committed results; then the "
                       "site")
    p.add_argument("-j", "--jobs", type=int, default=None, help="parallel runs")
    p.add_argument("--time-limit", type=float, default=None, metavar="S")
    results_option(p)
    p.set_defaults(func=_cmd_demo, track="external")
    from suites.sitegen import commands

    commands.add_commands(sub)
    for _, add_commands in registry.hooks("add_commands"):
        add_commands(sub)
    return parser


def _per_budget(values: dict) -> str:
    """``{"smoke": (1, 1), ...}`` as "smoke 1 1, quick 1 2, full 2 5" for help texts."""
    def text(value) -> str:
        return " ".join(f"{v:g}" for v in value) if isinstance(value, tuple) else f"{value:g}"

    return ", ".join(f"{budget} {text(values[budget])}" for budget in BUDGET_NAMES)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    # As the lsb command (no argv given) this process owns all its children, so orphans of
    # the workers' processes may be adopted and killed; called as a library, it may not.
    args.owns_children = argv is None
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from suites import registry

    for _, apply_options in registry.hooks("apply_options"):
        apply_options(args)
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        print("lsb: error: -j must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        _check_sweep_numbers(args)
    except UsageError as err:
        print(f"lsb: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    previous = signal.signal(signal.SIGTERM, _terminate)  # SIGTERM stops as Ctrl-C does
    try:
        return int(args.func(args) or 0)
    except UsageError as err:
        print(f"lsb: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\nlsb: interrupted; finished runs are saved, the same command resumes the sweep",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_sweep_numbers(args: argparse.Namespace) -> None:
    """Time limits and seed counts a sweep can use, checked before anything is validated
    or run."""
    limit = getattr(args, "time_limit", None)
    if limit is not None and not (math.isfinite(limit) and limit > 0):
        default = TIME_LIMITS[getattr(args, "budget", None) or "quick"]
        raise UsageError(f"--time-limit {limit:g}: give a finite number of seconds > 0, "
                         f"e.g. --time-limit {default:g}")
    memory = getattr(args, "memory_limit", None)
    if memory is not None and not (math.isfinite(memory) and memory > 0):
        raise UsageError(f"--memory-limit {memory:g}: give a finite number of GiB > 0, "
                         "e.g. --memory-limit 8")
    validation = getattr(args, "validation_timeout", None)
    if validation is not None and not (math.isfinite(validation) and validation > 0):
        raise UsageError(f"--validation-timeout {validation:g}: give a finite number of "
                         f"seconds > 0, e.g. --validation-timeout {VALIDATION_TIMEOUT:g}")
    seeds = getattr(args, "seeds", None)
    if seeds and min(seeds) < 1:
        raise UsageError(f"--seeds {seeds[0]} {seeds[1]}: both counts must be at least 1 "
                         "(one tuning and one evaluation seed at the least), e.g. --seeds 1 2")


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
