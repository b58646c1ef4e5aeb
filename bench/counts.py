"""The per-commit count gate: deterministic figures of the kernels, measured on a CPU.

    python -m bench.counts measure [--rev REV]      # results/counts/<commit>.json
    python -m bench.counts compare --base REV       # exit 1 when a count moved > 2 %
    python -m bench.counts backfill REV...|RANGE    # a record per commit, oldest first
    python -m bench.counts repeat --runs 2          # instruction counts' spread over runs

A *record* holds, for one commit's ``kernels`` package measured by this checkout's
harness (as asv does: a commit that lacks a case has it ``absent``, with the reason):

- ``instructions/<case>``: instructions per call of each CPU path of
  ``bench.cases.INSTRUCTION_CASES``, counted by valgrind's callgrind (``bench.callgrind``);
- ``bytes_per_element/<case>`` and ``sm_90 registers/<case>``, ... : the Triton kernels'
  metered bytes and compile figures for ``bench.cases.STATIC_CASES``
  (``bench.static_figures``);
- ``wall_seconds``: each CPU path's median wall time, beside the counts, never gated;
- the commit (hash, subject, time, place in the history), the machine label and CPU, the
  torch, Triton, Python and valgrind versions, the harness's digest and the gate's
  threshold.

Records are comparable when those environment fields agree (``ENVIRONMENT``); ``compare``
measures the base again where its stored record is not. The instruction counts and the
static figures are measured at once, in separate processes (one valgrind process for
every CPU path; the interpreter's metering in a pool). Where valgrind is missing the
instruction cases are absent with that reason, and the command says so.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import callgrind, cases, count_gate, static_figures

HARNESS = Path(__file__).resolve().parent
ROOT = HARNESS.parent
RESULTS = Path("results") / "counts"
FORMAT = 1
#: Fields that must agree for two records' counts to be compared.
ENVIRONMENT = ("machine", "cpu", "torch", "triton", "python", "valgrind", "harness")
HARNESS_FILES = ("cases.py", "count_paths.py", "callgrind.py", "static_figures.py")
TIMEOUT_S = 3600


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def harness_digest() -> str:
    """The counting harness's digest: records made by different harnesses differ."""
    digest = hashlib.sha256()
    for name in HARNESS_FILES:
        digest.update((HARNESS / name).read_bytes())
    return digest.hexdigest()[:16]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    import torch
    import triton

    from kernels.machine import machine_label

    return {"machine": machine_label(), "cpu": cpu_model(), "torch": torch.__version__,
            "triton": triton.__version__, "python": platform.python_version(),
            "valgrind": callgrind.valgrind_version(), "harness": harness_digest()}


def commit_info(repo: Path, rev: str) -> dict:
    """The commit's hash, subject, time, place in the history (how many commits it has,
    itself included: an ancestor always has fewer) and its ``kernels/`` tree."""
    sha, subject, when = git(repo, "log", "-1", "--format=%H%n%s%n%cI", rev).split("\n", 2)
    return {"commit": sha, "subject": subject, "commit_time": when,
            "order": int(git(repo, "rev-list", "--count", sha)),
            "kernels_tree": kernels_tree(repo, sha)}


def kernels_tree(repo: Path, rev: str) -> str | None:
    """The git tree of ``rev``'s ``kernels/``: all that the harness reads of a commit."""
    done = subprocess.run(["git", "rev-parse", "--verify", "-q", f"{rev}:kernels"], cwd=repo,
                          capture_output=True, text=True)
    return done.stdout.strip() or None


def export_kernels(repo: Path, rev: str | None, into: Path) -> None:
    """``kernels/`` of ``rev`` (None: of the working tree) into ``into/kernels``."""
    if rev is None:
        shutil.copytree(repo / "kernels", into / "kernels",
                        ignore=shutil.ignore_patterns("__pycache__"))
        return
    archive = subprocess.run(["git", "archive", "--format=tar", rev, "kernels"], cwd=repo,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def _instruction_series(env: dict, cwd: Path, record: dict, names: list[str]) -> None:
    missing = callgrind.valgrind_missing()
    if missing:
        print(f"instruction counts skipped: {missing}", file=sys.stderr)
        record["absent"].update(dict.fromkeys(names, missing))
    else:
        try:
            counts, absent = callgrind.instruction_counts(names, env, cwd, TIMEOUT_S)
        except (RuntimeError, subprocess.TimeoutExpired) as err:  # the commit's, recorded
            lines = str(err).strip().splitlines()
            counts, absent = {}, dict.fromkeys(names, " ".join(lines[:1] + lines[-1:]))
        record["absent"].update(absent)
        for name, count in counts.items():
            record["series"][f"instructions/{name}"] = {
                "kind": "instructions", "figure": "instructions", "case": name, "arch": None,
                "unit": "instructions per call", "value": count}
    out = cwd / "wall.json"
    done = subprocess.run(callgrind.worker_command(names, out, wall=True), cwd=cwd, env=env,
                          capture_output=True, timeout=TIMEOUT_S)
    record["wall_seconds"] = json.loads(out.read_text())["seconds"] if done.returncode == 0 \
        else {}


def _static_series(env: dict, cwd: Path, record: dict, names: list[str]) -> None:
    out = cwd / "static.json"
    done = subprocess.run([sys.executable, "-m", "bench.static_figures", "--out", str(out),
                           *names], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    if done.returncode != 0:
        reason = f"the static report failed: {done.stderr.strip().splitlines()[-1:]}"
        record["absent"].update(dict.fromkeys(names, reason))
        return
    report = json.loads(out.read_text())
    record["absent"].update(report["absent"])
    for series in static_figures.figures(report):
        figure = series["figure"] if series["arch"] is None \
            else f"{series['arch']} {series['figure']}"
        kind = "bytes" if series["arch"] is None else "compile"
        record["series"][f"{figure}/{series['case']}"] = {**series, "kind": kind}


def everything() -> dict[str, list[str]]:
    """The cases a full record measures, by kind."""
    return {"instructions": [c.name for c in cases.INSTRUCTION_CASES],
            "static": list(cases.STATIC_CASES)}


def measure(repo: Path, rev: str | None = None, cases_measured: dict | None = None) -> dict:
    """The record of ``rev``'s ``kernels`` (None: the working tree's) in ``repo``, of
    ``cases_measured`` (``{"instructions": [...], "static": [...]}``; default: all)."""
    started = time.monotonic()
    wanted = cases_measured or everything()
    head = rev or "HEAD"
    dirty = rev is None and bool(git(repo, "status", "--porcelain"))
    record = {"format": FORMAT, **commit_info(repo, head), "measured_commit": None,
              "dirty": dirty,
              **environment(), "threshold": count_gate.THRESHOLD, "measured": wanted,
              "series": {}, "absent": {}, "wall_seconds": {}}
    if dirty:
        record["kernels_tree"] = None  # the working tree's, which no commit holds
    with tempfile.TemporaryDirectory(prefix="lsb-counts-") as tmp:
        tree = Path(tmp)
        export_kernels(repo, rev, tree)
        # The measured kernels first, then this checkout's harness; run from the export so
        # that no other ``kernels`` directory comes first.
        path = os.pathsep.join([str(tree), str(ROOT), os.environ.get("PYTHONPATH", "")])
        env = {**os.environ, "PYTHONPATH": path.rstrip(os.pathsep)}
        static, instructions = {"series": {}, "absent": {}}, {"series": {}, "absent": {}}
        with ThreadPoolExecutor(2) as pool:
            jobs = [pool.submit(_static_series, env, tree, static, wanted["static"])
                    if wanted["static"] else None,
                    pool.submit(_instruction_series, env, tree, instructions,
                                wanted["instructions"]) if wanted["instructions"] else None]
            for job in jobs:
                if job is not None:
                    job.result()
    for part in (instructions, static):
        record["series"].update(part["series"])
        record["absent"].update(part["absent"])
    record["wall_seconds"] = instructions.get("wall_seconds", {})
    record["seconds"] = round(time.monotonic() - started, 1)
    return record


def record_path(repo: Path, record: dict) -> Path:
    suffix = "-dirty" if record["dirty"] else ""
    return repo / RESULTS / f"{record['commit']}{suffix}.json"


def save(repo: Path, record: dict) -> Path:
    path = record_path(repo, record)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def comparable(a: dict, b: dict) -> bool:
    return all(a.get(k) == b.get(k) for k in ENVIRONMENT)


def _covers(record: dict, env: dict, wanted: dict) -> bool:
    measured = record.get("measured", {})
    return comparable(record, env) and all(set(names) <= set(measured.get(kind, ()))
                                           for kind, names in wanted.items())


def stored(repo: Path, sha: str, env: dict, wanted: dict) -> dict | None:
    """A record of commit ``sha`` made in this environment with at least the cases
    ``wanted``: its own, or that of a commit with the same ``kernels/`` tree (the harness
    reads nothing else of a commit), as the record of ``sha`` with ``measured_commit``
    naming the commit measured."""
    own = repo / RESULTS / f"{sha}.json"
    if own.is_file() and _covers(record := json.loads(own.read_text()), env, wanted):
        return record
    tree = kernels_tree(repo, sha)
    for path in sorted((repo / RESULTS).glob("*.json")) if tree else []:
        record = json.loads(path.read_text())
        if record.get("kernels_tree") == tree and not record.get("dirty") \
                and _covers(record, env, wanted):
            measured = record.get("measured_commit") or record["commit"]
            return {**record, **commit_info(repo, sha), "measured_commit": measured}
    return None


def record_of(repo: Path, rev: str, wanted: dict) -> dict:
    """``rev``'s record where one made here is stored, else a new measurement."""
    sha = git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}")
    record = stored(repo, sha, environment(), wanted)
    if record is None:
        print(f"measuring {rev} ({sha[:8]}): no record of it made here", file=sys.stderr)
        record = measure(repo, sha, wanted)
    return record


def _say(record: dict, path: Path | None = None) -> None:
    counted = sum(s["kind"] == "instructions" for s in record["series"].values())
    where = f" -> {path}" if path else ""
    how = f"the figures of {record['measured_commit'][:8]} (the same kernels/ tree)" \
        if record.get("measured_commit") else f"measured in {record['seconds']:.0f} s"
    print(f"{record['commit'][:8]} {record['subject'][:60]}: {len(record['series'])} series "
          f"({counted} instruction counts), {len(record['absent'])} cases absent, "
          f"{how}{where}", file=sys.stderr)


def _wanted(args: argparse.Namespace) -> dict[str, list[str]]:
    wanted = everything()
    for kind, chosen in (("instructions", args.instruction_cases), ("static", args.static_cases)):
        unknown = [name for name in chosen or () if name not in wanted[kind]]
        if unknown:
            print(f"error: no {kind} case {unknown[0]!r}; the cases are: "
                  f"{', '.join(wanted[kind])}", file=sys.stderr)
            raise SystemExit(2)
        wanted[kind] = list(chosen or wanted[kind])
    if args.only:
        wanted = {kind: names if kind == args.only else [] for kind, names in wanted.items()}
    return wanted


def cmd_measure(args: argparse.Namespace) -> int:
    record = measure(args.repo, args.rev, _wanted(args))
    path = save(args.repo, record)
    _say(record, path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    wanted = _wanted(args)
    base = record_of(args.repo, args.base, wanted)
    head = measure(args.repo, None, wanted) if args.head is None \
        else record_of(args.repo, args.head, wanted)
    _say(head)
    rows = count_gate.compare(base, head)
    bad = count_gate.failed(rows)
    shown = bad if not args.all else rows
    what = "the working tree" if args.head is None else f"{args.head} ({head['commit'][:8]})"
    print(f"counts of {what} against {args.base} ({base['commit'][:8]}): {len(rows)} series, "
          f"{len(bad)} moved by more than {count_gate.THRESHOLD:.0%} or gone")
    if shown:
        print(count_gate.table(shown, base["wall_seconds"], head["wall_seconds"]))
    for name, why in sorted(head["absent"].items()):
        print(f"absent in {what}: {name}: {why}")
    return 1 if bad else 0


def merged(old: dict, new: dict) -> dict:
    """``old``'s record with ``new``'s measurement of other cases of the same commit added."""
    measured = {kind: sorted(set(old["measured"].get(kind, ())) | set(names))
                for kind, names in new["measured"].items()}
    remeasured = {case for names in new["measured"].values() for case in names}
    absent = {c: why for c, why in old["absent"].items() if c not in remeasured}
    return {**old, "measured": measured, "series": {**old["series"], **new["series"]},
            "absent": {**absent, **new["absent"]},
            "wall_seconds": new["wall_seconds"] or old["wall_seconds"],
            "seconds": old["seconds"] + new["seconds"]}


def cmd_backfill(args: argparse.Namespace) -> int:
    commits = []
    for rev in args.revs:
        listed = git(args.repo, "rev-list", "--reverse", rev) if ".." in rev \
            else git(args.repo, "rev-parse", "--verify", f"{rev}^{{commit}}")
        commits += [c for c in listed.split() if c not in commits]
    env, wanted = environment(), _wanted(args)
    for number, sha in enumerate(commits, 1):
        path = args.repo / RESULTS / f"{sha}.json"
        own = json.loads(path.read_text()) if path.is_file() else None
        own = own if own is not None and comparable(own, env) else None
        if own is not None and _covers(own, env, wanted):
            print(f"[{number}/{len(commits)}] {sha[:8]}: recorded already", file=sys.stderr)
            continue
        record = stored(args.repo, sha, env, wanted)
        if record is None:
            done = own["measured"] if own is not None else {}
            missing = {kind: [c for c in names if c not in done.get(kind, ())]
                       for kind, names in wanted.items()}
            record = measure(args.repo, sha, missing)
            record = merged(own, record) if own is not None else record
        print(f"[{number}/{len(commits)}] ", end="", file=sys.stderr)
        _say(record, save(args.repo, record))
    return 0


def cmd_repeat(args: argparse.Namespace) -> int:
    """The working tree's instruction counts, each from its own valgrind process, ``runs``
    times: the spread (max / min - 1) of each case says how repeatable the counts are."""
    names = [c.name for c in cases.INSTRUCTION_CASES]
    missing = callgrind.valgrind_missing()
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    runs = []
    with tempfile.TemporaryDirectory(prefix="lsb-counts-") as tmp:
        export_kernels(args.repo, None, Path(tmp))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([tmp, str(ROOT)])}
        for number in range(args.runs):
            started = time.monotonic()
            counted, absent = callgrind.instruction_counts(names, env, Path(tmp), TIMEOUT_S)
            runs.append(counted)
            print(f"run {number + 1}: {len(counted)} cases counted, {len(absent)} absent, "
                  f"{time.monotonic() - started:.0f} s", file=sys.stderr)
    widest = max(map(len, names))
    print(f"{'case':{widest}s}  {'min':>12s}  {'max':>12s}  spread")
    for name in names:
        values = [run[name] for run in runs if name in run]
        if values:
            print(f"{name:{widest}s}  {min(values):12,d}  {max(values):12,d}  "
                  f"{max(values) / min(values) - 1:.3%}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.counts", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", type=Path, default=Path.cwd(),
                   help="the repository measured (default: the current directory)")
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="record the working tree's (or REV's) counts")
    m.add_argument("--rev", default=None, help="a commit (default: the working tree)")
    m.set_defaults(run=cmd_measure)
    c = sub.add_parser("compare", help="the working tree against BASE; 1 when a count moved")
    c.add_argument("--base", required=True, help="the commit compared with")
    c.add_argument("--head", default=None, help="a commit (default: the working tree)")
    c.add_argument("--all", action="store_true", help="print every series, not only those moved")
    c.set_defaults(run=cmd_compare)
    b = sub.add_parser("backfill", help="record commits that have no record made here")
    b.add_argument("revs", nargs="+", help="commits, or ranges such as main~30..main")
    b.set_defaults(run=cmd_backfill)
    r = sub.add_parser("repeat", help="the working tree's instruction counts, several times")
    r.add_argument("--runs", type=int, default=2, help="valgrind processes (default 2)")
    r.set_defaults(run=cmd_repeat)
    for command in (m, c, b):
        command.add_argument("--only", choices=("instructions", "static"), default=None,
                             help="measure one kind of figure only")
        command.add_argument("--static-cases", nargs="+", default=None, metavar="CASE",
                             help="these static report cases (default: STATIC_CASES)")
        command.add_argument("--instruction-cases", nargs="+", default=None, metavar="CASE",
                             help="these instruction cases, e.g. 'adamw[reference-1x1048576]' "
                                  "(default: INSTRUCTION_CASES)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.repo = Path(git(args.repo.resolve(), "rev-parse", "--show-toplevel"))
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
