"""What ``lsb`` prints: leaderboard tables, kernel tables, a sweep's estimated cost and its
failures (pandas frames as text). The commands are in ``suites.cli``."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

EXIT_OK, EXIT_RUNS_FAILED = 0, 1
#: The last lines of a failed run's output that its summary shows, and their widest.
OUTPUT_LINES = 5
OUTPUT_LINE_CHARS = 160


def print_estimate(estimate, jobs: int) -> None:
    """Per suite: the runs a sweep will make and the time they will take at ``jobs`` runs at
    once (``suites.estimate``), then the whole, its fixed start-up costs included."""
    for suite, runs in estimate.runs.items():
        guessed = estimate.guessed.get(suite, 0)
        note = f"; {guessed} with no recorded run of the task or suite, guessed" if guessed \
            else ""
        print(f"  {suite}: {runs} runs to make, about {duration(estimate.seconds[suite])} at "
              f"-j {jobs}{note}")
    for what, seconds in estimate.after.items():
        print(f"  then {what}: about {duration(seconds)}")
    print(f"  in all about {duration(estimate.total_seconds)}, starting the workers included")


def print_skipped(skipped: dict[tuple[str, str], str]) -> None:
    """The (task, optimizer) pairs whose later phases a sweep did not run, and why."""
    for (task, optimizer), reason in sorted(skipped.items()):
        print(f"  skipped {optimizer} on {task}: {reason}")


def duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 600:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"



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
            f"  {r.spec.task}  {r.spec.optimizer.name}  {r.spec.hparams}  seed {r.spec.seed}  "
            f"{r.status}: {reason}",
            file=sys.stderr,
        )
        printed = [line if len(line) <= OUTPUT_LINE_CHARS else line[:OUTPUT_LINE_CHARS] + "…"
                   for line in r.output_tail.splitlines() if line.strip()]
        if printed:
            print("    its output ended:\n      " + "\n      ".join(printed[-OUTPUT_LINES:]),
                  file=sys.stderr)
    print("the whole tracebacks are in the run files (\"error\"); to make these runs again:\n"
          f"  {retry_command(argv)}", file=sys.stderr)
    return EXIT_RUNS_FAILED


def print_verdicts(verdicts) -> int:
    """What ``lsb verify`` found, file by file, and the exit code (1 on any difference)."""
    bad = 0
    for verdict in verdicts:
        for note in verdict.notes:
            print(f"  note: {verdict.path}: {note}")
        if verdict.problem is not None:
            bad += 1
            print(f"NOT VERIFIED {verdict.path}: {verdict.problem}")
        elif verdict.differences:
            bad += 1
            print(f"DIFFERS {verdict.path}:")
            for where, recorded, again in verdict.differences:
                print(f"    {where}: recorded {recorded!r}, re-run {again!r}")
        else:
            print(f"ok {verdict.path}")
    print(f"{len(verdicts) - bad} of {len(verdicts)} run files verified, {bad} not")
    return EXIT_RUNS_FAILED if bad else EXIT_OK


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
    "tasks and seeds; rank: 1 + the optimizers that beat this one, by the paired difference of "
    "their scores on the same resamples, at a 5 % false-discovery rate over all pairs; =r: "
    "a rank shared with optimizers it is not told apart from; step_window: geometric mean "
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


def print_variants(runs, budget: str) -> int:
    """``lsb show --variants``: the ranking on the held-out variants against the public one."""
    from suites import leaderboard

    table, tau = leaderboard.variant_table(runs, budget)
    if table.empty:
        print(f"no held-out variant runs at the {budget!r} budget with public ones to compare: "
              f"`lsb run` evaluates the variants unless --no-variants is given")
        return EXIT_OK
    print(f"\n== held-out variants ({tau['variant_tasks']} tasks; budget {budget}) ==")
    shown = table.assign(rank_change=[f"{c:+d}" if c else "0" for c in table["rank_change"]])
    print(as_text(shown))
    print(f"\nKendall tau between the public and the variant orders: {tau['tau']:.2f} "
          f"(95 % bootstrap interval {tau['tau_low']:.2f} to {tau['tau_high']:.2f}; 1: the "
          f"same order, 0: unrelated)")
    return EXIT_OK


def print_leaderboard(root: Path, budget: str, suites: list[str] | None,
                      track: str = "external", runs=None) -> bool:
    """The leaderboard of ``runs`` (default: those of ``track`` under ``root``)."""
    from suites import leaderboard

    every = leaderboard.load_runs(root, track) if runs is None else runs
    if suites:
        every = every[every["suite"].isin(suites)]
    # Each optimizer's latest version at this budget, selected once: every table below
    # would select the same rows from the whole store again.
    runs = leaderboard.latest_versions(every)
    runs = runs[runs["budget"] == budget]
    table = leaderboard.task_table(runs, budget)
    if table.empty:
        return False
    chosen = sorted(table["suite"].unique())
    where = "" if track == "external" else f"; {track} track"
    print(f"\n== overall ({', '.join(chosen)}; budget {budget}{where}) ==")
    overall = leaderboard.overall_table(runs, budget)
    print(as_text(overall_for_show(overall)) + SCORE_NOTE)
    groups = leaderboard.rank_groups(overall["tied_rank"])
    print(f"{groups} rank group{'s' if groups != 1 else ''} among {len(overall)} optimizers")
    for suite in chosen:
        print(f"\n== {suite}: score (rank) per task ==")
        print(as_text(suite_ranking(table, suite)))
        if (windows := windows_for_show(runs, budget, suite)) is not None:
            print(f"\n== {suite}: step-size window per task ==\n{as_text(windows)}")
        if len(chosen) > 1:
            print(f"\n== {suite}: overall ==")
            print(as_text(overall_for_show(leaderboard.overall_table(runs, budget, suite))))
    print_coverage(table)
    old = leaderboard.superseded_versions(every)
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
    """The kernel benchmark tables of ``root/kernels`` (pytest-benchmark JSON, ``make bench``)
    and the count gate's history of ``root/counts`` (``make counts``): each series' first
    bad commit, as the site's kernels page shows them."""
    import pandas as pd

    from suites import site_data
    from suites.site_data import kernels as kernel_data

    frame, problems = site_data.kernel_frame(root / "kernels")
    for problem in problems:
        print(f"skipped {problem.path}: {problem.reason}", file=sys.stderr)
    if frame.empty:
        print(f"no kernel benchmarks in {root}/kernels/: run `make bench`")
    columns = ["kernel", "size", "impl", "time_s", "gbps", "peak_fraction", "speedup"]
    for table in site_data.kernel_tables(frame):
        print(f"\n== {table['file']}: {table['device']} on {table['machine']}, "
              f"{table['run_date']}, commit {table['commit'] or '?'} ==")
        rows = pd.DataFrame(table["rows"])[columns]
        numbers = ["time_s", "gbps", "peak_fraction", "speedup"]
        print(as_text(rows.astype(dict.fromkeys(numbers, float))))
    counts = kernel_data.load_counts(root / "counts")
    for problem in counts.problems:
        print(f"skipped {problem.path}: {problem.reason}", file=sys.stderr)
    if not counts.commits:
        print(f"\nno count records in {root}/counts/: run `make counts`")
        return EXIT_OK
    env = counts.environment
    print(f"\n== counts per commit: {len(counts.commits)} commits on {env['machine']} "
          f"({env['cpu']}), torch {env['torch']}, triton {env['triton']}, "
          f"{env['valgrind'] or 'no valgrind'} ==")
    moved = kernel_data.moved_rows(counts)
    if moved:
        print(f"first bad commits (moved by more than {counts.threshold:.0%} from one commit "
              "to the next):")
        table = pd.DataFrame(moved).assign(
            first_bad=lambda f: [f"{c[:8]} {s[:60]}" + (f" (first since {g[:8]})" if g else "")
                                 for c, s, g in zip(f["commit"], f["subject"], f["after_gap"],
                                                    strict=True)])
        print(as_text(table[["figure", "case", "before", "after", "last", "first_bad"]]
                      .rename(columns={"after": "at_it", "last": "latest"})))
    print(f"{len(counts.series) - len(moved)} of {len(counts.series)} series never moved"
          + (f"; {counts.left_out} records of other environments or dirty trees left out"
             if counts.left_out else ""))
    return EXIT_OK
