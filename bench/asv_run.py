"""asv across commits, with its input checked first: ``python -m bench.asv_run``.

    python -m bench.asv_run run HEAD~10..HEAD         # asv run, results into results/asv/
    python -m bench.asv_run continuous main HEAD      # asv continuous --factor 1.1
    python -m bench.asv_run compare main HEAD         # asv compare, this machine's results

Before asv starts, this checks what asv would otherwise answer with a traceback or a
half-finished run: asv is installed, the range names commits, the machine has an entry
in asv's machine file (``~/.asv-machine.json``) for ``run`` and ``continuous``, and
``compare`` has results of that machine. A run that fails or is interrupted leaves
``results/asv/`` as it was: the results directory is copied first and put back. The
machine name defaults to ``kernels.machine.machine_label()`` (``cpu-2c``, ``h200``),
the label of the pytest-benchmark files. Extra arguments after ``--`` go to asv unchanged.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "asv.conf.json"
MACHINE_FILE = Path("~/.asv-machine.json").expanduser()
# asv run exits 2 when some benchmark failed (an old commit may lack a case): those
# results are still results. asv continuous exits 1 when it found a regression.
KEEP_RESULTS_ON = {"run": {0, 2}, "continuous": {0, 1, 2}, "compare": {0, 1}}


class InputError(Exception):
    """Bad input, with the message that names the fix."""


def check_asv() -> None:
    if importlib.util.find_spec("asv") is None:
        raise InputError(
            f"asv is not installed in {sys.executable}: run `make asv-history` (it installs "
            "the project's test extras into .venv) or `pip install 'asv>=0.6'`"
        )


def range_spec(revisions: str) -> str:
    """A range as it is; one commit as ``COMMIT^!`` (asv would time all its ancestors)."""
    return revisions if ".." in revisions else f"{revisions}^!"


def commits(revisions: str) -> list[str]:
    """The commits asv would time for ``revisions`` (a range, or one commit)."""
    out = subprocess.run(
        ["git", "rev-list", "--first-parent", range_spec(revisions), "--"],
        cwd=ROOT, capture_output=True, text=True,
    )
    if out.returncode != 0:
        raise InputError(
            f"git cannot read {revisions!r}: {out.stderr.strip().splitlines()[0]}\n"
            "name a range of this repository's commits, e.g. HEAD~5..HEAD or main~10..main"
        )
    found = out.stdout.split()
    if not found:
        raise InputError(
            f"{revisions!r} names no commits (`git log --oneline {revisions}` is empty): "
            "the left side must be an ancestor of the right, e.g. HEAD~5..HEAD"
        )
    return found


def check_machine(machine: str) -> None:
    fix = f"run `asv machine --machine {machine} --yes` (records this machine's CPU, OS, RAM)"
    if not MACHINE_FILE.exists():
        raise InputError(f"asv's machine file {MACHINE_FILE} is missing: {fix}")
    try:
        known = json.loads(MACHINE_FILE.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{MACHINE_FILE} is not JSON ({err}): delete it, then {fix}") from None
    if machine not in known:
        names = ", ".join(sorted(k for k in known if k != "version")) or "none"
        raise InputError(f"{MACHINE_FILE} has no machine {machine!r} (it has: {names}): {fix}")


def results_dir() -> Path:
    from asv.util import load_json  # asv's reader: the config has // comments

    return ROOT / load_json(str(CONFIG), js_comments=True)["results_dir"]


def check_results(machine: str) -> None:
    machine_dir = results_dir() / machine
    if not (machine_dir / "machine.json").exists():
        known = sorted(p.parent.name for p in results_dir().glob("*/machine.json"))
        raise InputError(
            f"no asv results of machine {machine!r} in {machine_dir.parent}/ (machines with "
            f"results: {', '.join(known) or 'none'}): pass --machine NAME, or time the commits "
            f"first with `python -m bench.asv_run run RANGE --machine {machine}`"
        )


def default_machine() -> str:
    from kernels.machine import machine_label

    return machine_label()


def asv_command(args: argparse.Namespace) -> list[str]:
    asv = [sys.executable, "-m", "asv"]
    if args.command == "run":
        return [*asv, "run", range_spec(args.revisions), "--machine", args.machine, *args.asv_args]
    if args.command == "continuous":
        return [*asv, "continuous", args.base, args.head, "--machine", args.machine,
                "--factor", str(args.factor), *args.asv_args]
    return [*asv, "compare", args.base, args.head, "--machine", args.machine,
            "--factor", str(args.factor), *args.asv_args]


def run_keeping_results(command: list[str], keep_on: set[int]) -> int:
    """Run asv; put the results directory back as it was unless asv's exit status is
    one of ``keep_on``, or when interrupted."""
    results = results_dir()
    with tempfile.TemporaryDirectory(prefix="asv-results-") as tmp:
        backup = Path(tmp) / "results"
        if results.exists():
            shutil.copytree(results, backup)
        rc = None
        try:
            rc = subprocess.run(command, cwd=ROOT).returncode
        finally:
            if rc not in keep_on:
                shutil.rmtree(results, ignore_errors=True)
                if backup.exists():
                    shutil.copytree(backup, results)
                print(f"asv did not finish (exit status {rc}): {results} is as it was before",
                      file=sys.stderr)
    return rc


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.asv_run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="time every commit of a range")
    run.add_argument("revisions", help="a commit range (HEAD~5..HEAD) or one commit")
    for name in ("continuous", "compare"):
        cmd = sub.add_parser(name, help=f"asv {name} BASE HEAD")
        cmd.add_argument("base")
        cmd.add_argument("head", nargs="?", default="HEAD")
        cmd.add_argument("--factor", type=float, default=1.1,
                         help="the ratio that counts as a change (default 1.1)")
    for cmd in sub.choices.values():
        cmd.add_argument("--machine", default=None,
                         help="asv machine name (default: this machine's label, e.g. cpu-2c)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    ours, asv_args = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, [])
    args = parser().parse_args(ours)
    args.asv_args = asv_args
    try:
        check_asv()
        args.machine = args.machine or default_machine()
        if args.command == "run":
            count = len(commits(args.revisions))
            print(f"asv run: {count} commit(s) of {args.revisions} on machine {args.machine}")
        else:
            commits(args.base)
            commits(args.head)
        if args.command == "compare":
            check_results(args.machine)  # reads results only: no machine entry needed
        else:
            check_machine(args.machine)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        return run_keeping_results(asv_command(args), KEEP_RESULTS_ON[args.command])
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
