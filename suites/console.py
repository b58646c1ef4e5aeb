"""What ``lsb`` prints: leaderboard tables, kernel tables, a sweep's estimated cost and its
failures (pandas frames as text). The commands are in ``suites.cli``."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

from suites.api import SEEDS_PER_BUDGET, SENSITIVITY_EXPONENTS

EXIT_OK, EXIT_RUNS_FAILED = 0, 1


def print_estimate(root: Path, tasks, submissions, budget: str, seeds, jobs: int) -> None:
    """Per suite: the runs the sweep makes at most (tuning, evaluation and sensitivity, before
    what the store already holds) and the time they would take at ``jobs`` runs at once, from the
    tasks' recorded wall time per run."""
    from suites import leaderboard
    from suites.results import ResultStore, StoreError

    n_tune, n_eval = tuple(seeds) if seeds else SEEDS_PER_BUDGET[budget]
    try:
        known = leaderboard.seconds_per_run(leaderboard.runs_frame(ResultStore(root).records()),
                                            budget)
    except StoreError:
        known = {}
    per_suite: dict[str, list[float]] = {}
    for task in tasks:
        runs = sum(len(s.configs()) * n_tune + n_eval
                   + (len(SENSITIVITY_EXPONENTS) - 1) * n_tune * (s.lr_key is not None)
                   for s in submissions)
        entry = per_suite.setdefault(task.suite, [0, 0.0, 0])
        entry[0] += runs
        if task.name in known:
            entry[1] += runs * known[task.name]
        else:
            entry[2] += 1
    for suite, (runs, seconds, unknown) in per_suite.items():
        guess = f"about {duration(seconds / jobs)} at -j {jobs}" if seconds else "time unknown"
        note = f" ({unknown} tasks with no recorded run: not counted)" if unknown and seconds \
            else ""
        print(f"  {suite}: at most {runs} runs, {guess}{note} (runs in the store are reused)")


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min" \
        if seconds < 5400 else f"{seconds / 3600:.1f} h"



def report_failures(failed, argv: list[str] | None = None) -> int:
    """List the runs that ended in ``error`` or ``timeout`` with their root cause (the
    first line of the recorded error), and the command that makes them again; the exit
    code."""
    if not failed:
        return EXIT_OK
    print(f"\n{len(failed)} runs failed:", file=sys.stderr)
    for r in failed:
        lines = [line for line in (r.error or "").strip().splitlines() if line.strip()]
        reason = lines[0].strip() if lines else "(no message)"
        print(
            f"  {r.spec.task}  {r.spec.optimizer}  {r.spec.hparams}  seed {r.spec.seed}  "
            f"{r.status}: {reason}",
            file=sys.stderr,
        )
    print("the whole tracebacks are in the run files (\"error\"); to make these runs again:\n"
          f"  {retry_command(argv)}", file=sys.stderr)
    return EXIT_RUNS_FAILED


def retry_command(argv: list[str] | None) -> str:
    import shlex

    words = list(sys.argv[1:] if argv is None else argv)
    if "--retry-failed" not in words:
        words.append("--retry-failed")
    return shlex.join(["lsb", *words])


def as_text(frame) -> str:
    import pandas as pd

    def number(x: float) -> str:
        return f"{x:.4g}" if math.isfinite(x) else "fail"

    with pd.option_context("display.width", 250, "display.max_columns", None,
                           "display.max_colwidth", 60, "display.float_format", number):
        return frame.to_string(index=False, na_rep="-")  # NaN: not measured (e.g. no sgd)


def suite_ranking(table, suite: str):
    """Optimizers × tasks of a suite: 'score (rank)' cells, or 'fail'."""
    rows = table[table["suite"] == suite]
    cells = rows.assign(
        cell=[
            f"{m:.3g} ({k})" if math.isfinite(m) else "fail"
            for m, k in zip(rows["score_mean"], rows["rank"], strict=True)
        ],
        short=rows["task"].str.removeprefix(f"{suite}/"),
    )
    pivot = cells.pivot(index="optimizer", columns="short", values="cell").fillna("-")
    pivot = pivot[sorted(pivot.columns, key=natural_key)]
    return pivot.rename_axis(columns=None).reset_index()


def natural_key(name: str) -> list:
    """Sort "depth-4" before "depth-16"."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def print_coverage(table) -> None:
    """Name the tasks that some optimizers have no results on: not in the overall score."""
    optimizers = table["optimizer"].nunique()
    counts = table.groupby("task")["optimizer"].nunique()
    partial = counts[counts < optimizers]
    if not partial.empty:
        listed = ", ".join(f"{task} ({n} of {optimizers})" for task, n in partial.items())
        print(f"\nranked on their own, not in the overall score (not every optimizer has run "
              f"them): {listed}")


#: Printed under the overall table: what its columns mean.
SCORE_NOTE = (
    "\n(score: area under the performance profile ± half its 95 % bootstrap interval over "
    "tasks and seeds; =r: ranks the intervals cannot tell apart; step_window: geometric mean "
    "over tasks of the factor by which the tuned step size (× 2^k, k = -3…3) stays near its "
    "best on every tuning seed)")
OVERALL_COLUMNS = ["rank", "optimizer", "score", "tasks_solved", "tasks", "step_window",
                   "grid_near_best", "time_vs_sgd", "memory_vs_sgd", "state_per_param",
                   "source_hash"]


def overall_for_show(overall):
    """``leaderboard.overall_table`` as printed: the rank with its ties ("=3"), the score ±
    half its bootstrap interval, the step-size window as a factor ("×8", "n/a")."""
    from suites.sitegen.format import fmt_interval, fmt_window

    shown = overall.assign(
        rank=overall["tied_rank"],
        score=[fmt_interval(v, lo, hi) for v, lo, hi in
               zip(overall["profile_score"], overall["score_low"], overall["score_high"],
                   strict=True)],
        step_window=[fmt_window(w) for w in overall["step_window"]],
    )
    return shown[OVERALL_COLUMNS]


def windows_for_show(runs, budget: str, suite: str):
    """Optimizers × tasks of a suite: each step-size window ("×8", "none", "n/a"); ``None``
    when the suite has no sensitivity runs."""
    from suites import leaderboard
    from suites.sitegen.format import fmt_window

    windows = leaderboard.step_size_windows(leaderboard.sensitivity_points(runs, budget, suite))
    if windows.empty:
        return None
    windows = windows.assign(
        cell=[fmt_window(w, found) for w, found in
              zip(windows["window"], windows["found"], strict=True)],
        short=windows["task"].str.removeprefix(f"{suite}/"))
    pivot = windows.pivot(index="optimizer", columns="short", values="cell").fillna("n/a")
    pivot = pivot[sorted(pivot.columns, key=natural_key)]
    return pivot.rename_axis(columns=None).reset_index()


def print_leaderboard(root: Path, budget: str, suites: list[str] | None) -> bool:
    from suites import leaderboard

    runs = leaderboard.load_runs(root)
    if suites:
        runs = runs[runs["suite"].isin(suites)]
    table = leaderboard.task_table(runs, budget)
    if table.empty:
        return False
    chosen = sorted(table["suite"].unique())
    print(f"\n== overall ({', '.join(chosen)}; budget {budget}) ==")
    print(as_text(overall_for_show(leaderboard.overall_table(runs, budget))) + SCORE_NOTE)
    for suite in chosen:
        print(f"\n== {suite}: score (rank) per task ==")
        print(as_text(suite_ranking(table, suite)))
        if (windows := windows_for_show(runs, budget, suite)) is not None:
            print(f"\n== {suite}: step-size window per task ==\n{as_text(windows)}")
        if len(chosen) > 1:
            print(f"\n== {suite}: overall ==")
            print(as_text(overall_for_show(leaderboard.overall_table(runs, budget, suite))))
    print_coverage(table)
    old = leaderboard.superseded_versions(runs)
    if not old.empty:
        versions = ", ".join(f"{o} {h} ({n} runs)" for o, h, n in old.itertuples(index=False))
        print(f"\nignored (superseded source versions): {versions}")
    return True


def headline(description: str) -> str:
    """A docstring's first phrase: its first paragraph up to the first colon or full stop."""
    paragraph = " ".join(description.split("\n\n", 1)[0].split())
    end = re.search(r": |\.\s+(?=[A-Z])", paragraph)  # not inside "Eq. 147"
    return paragraph[: end.start()] if end else paragraph.rstrip(".")



def print_kernels(root: Path) -> int:
    """The kernel benchmark tables of ``root/kernels`` (pytest-benchmark JSON, ``make bench``)."""
    import pandas as pd

    from suites import site_data

    frame, problems = site_data.kernel_frame(root / "kernels")
    for problem in problems:
        print(f"skipped {problem.path}: {problem.reason}", file=sys.stderr)
    if frame.empty:
        print(f"no kernel benchmarks in {root}/kernels/: run `make bench`")
        return EXIT_OK
    columns = ["kernel", "size", "impl", "time_s", "gbps", "peak_fraction", "speedup"]
    for table in site_data.kernel_tables(frame):
        print(f"\n== {table['file']}: {table['device']} on {table['machine']}, "
              f"{table['run_date']}, commit {table['commit'] or '?'} ==")
        rows = pd.DataFrame(table["rows"])[columns]
        numbers = ["time_s", "gbps", "peak_fraction", "speedup"]
        print(as_text(rows.astype(dict.fromkeys(numbers, float))))
    return EXIT_OK
