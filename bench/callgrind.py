"""Instruction counts of CPU statements under valgrind's callgrind, many statements per process.

Importing torch under callgrind's instrumentation costs minutes; without it (``valgrind
--instr-atstart=no``) it costs a fifth of that. So the process starts uninstrumented, and
around each measured statement turns instrumentation on, counts one call with collection
on, dumps the count under the statement's name and turns instrumentation off again.
Those switches are valgrind *client requests*: a marker instruction sequence that is a
no-op on a real CPU and a request under valgrind (``valgrind/valgrind.h``). torch exposes
only the collection toggle, so :class:`ClientRequests` issues them from a few bytes of
machine code called through ctypes (x86-64 Linux).

``python -m bench.callgrind --out FILE [--wall] CASE...`` is the measuring process:
under valgrind (``instruction_counts``) it writes nothing but the dumps; with ``--wall``
(run natively) it writes each case's median wall time. Cases are ``bench.cases`` names,
built by ``bench.count_paths`` against whichever ``kernels`` package is first on the path.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import mmap
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

VALGRIND = "valgrind"
#: Hash randomisation changes the probes of every dict lookup; one intra-op thread keeps
#: torch's loops in one order.
WORKER_ENV = {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
WARMUP_CALLS = 2

# Callgrind's requests (callgrind.h): VG_USERREQ_TOOL_BASE('C', 'T') + 0, 1, 2, ...
_CALLGRIND = (ord("C") << 24) | (ord("T") << 16)
DUMP_STATS, ZERO_STATS, TOGGLE_COLLECT, DUMP_STATS_AT, START_INSTRUMENTATION, \
    STOP_INSTRUMENTATION = range(_CALLGRIND, _CALLGRIND + 6)
RUNNING_ON_VALGRIND = 0x1001

# ``request(args)``: valgrind.h's special-instruction preamble and client-request marker,
# with the argument block's address in rax and the default result 0 in rdx.
_REQUEST_CODE = {
    # mov rax, rdi; xor edx, edx; rol rdi, 3/13/61/51; xchg rbx, rbx; mov rax, rdx; ret
    "x86_64": "4889f8 31d2 48c1c703 48c1c70d 48c1c73d 48c1c733 4887db 4889d0 c3",
}


class ClientRequests:
    """Valgrind client requests from Python; every request answers 0 outside valgrind."""

    def __init__(self) -> None:
        code = _REQUEST_CODE.get(platform.machine())
        if code is None:
            raise RuntimeError(f"no valgrind client requests on {platform.machine()}")
        machine_code = bytes.fromhex(code.replace(" ", ""))
        self._page = mmap.mmap(-1, mmap.PAGESIZE,
                               prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self._page.write(machine_code)
        address = ctypes.addressof(ctypes.c_char.from_buffer(self._page))
        self._call = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p)(address)

    def __call__(self, request: int, *args: int) -> int:
        block = (ctypes.c_uint64 * 6)(request, *args, *[0] * (5 - len(args)))
        return self._call(ctypes.addressof(block))

    @property
    def on_valgrind(self) -> bool:
        return self(RUNNING_ON_VALGRIND) > 0

    def count(self, name: str, statement) -> None:
        """Run ``statement`` once with instrumentation and collection on; the count goes
        to a dump whose trigger names ``name``."""
        label = ctypes.create_string_buffer(name.encode())
        self(START_INSTRUMENTATION)
        self(ZERO_STATS)
        self(TOGGLE_COLLECT)
        statement()
        self(TOGGLE_COLLECT)
        self(DUMP_STATS_AT, ctypes.addressof(label))
        self(STOP_INSTRUMENTATION)


def valgrind_missing() -> str | None:
    """Why instruction counts cannot be taken here, or None when they can."""
    if shutil.which(VALGRIND) is None:
        return ("valgrind is not installed: `make counts` installs it where apt-get can "
                "(apt-get install valgrind); instruction counts are skipped")
    if platform.machine() not in _REQUEST_CODE:
        return f"valgrind client requests are not wired for {platform.machine()}"
    return None


def valgrind_version() -> str | None:
    if shutil.which(VALGRIND) is None:
        return None
    return subprocess.run([VALGRIND, "--version"], capture_output=True, text=True).stdout.strip()


_TRIGGER = re.compile(r"^desc: Trigger: Client Request: (.*)$", re.M)
_TOTALS = re.compile(r"^(?:totals|summary): (\d+)", re.M)


def read_dumps(directory: Path) -> dict[str, int]:
    """Instructions per named dump of the callgrind output files in ``directory``."""
    counts = {}
    for path in sorted(directory.glob("callgrind.out.*")):
        text = path.read_text(errors="replace")
        trigger, total = _TRIGGER.search(text), _TOTALS.search(text)
        if trigger and total:
            counts[trigger.group(1)] = int(total.group(1))
    return counts


def worker_command(cases: list[str], out: Path, *, wall: bool = False) -> list[str]:
    command = [sys.executable, "-m", "bench.callgrind", "--out", str(out), *cases]
    return command + ["--wall"] if wall else command


def instruction_counts(cases: list[str], env: dict[str, str], cwd: Path,
                       timeout: float) -> tuple[dict[str, int], dict[str, str]]:
    """``cases``' instructions per call, counted in one valgrind process run with ``env``
    in ``cwd``; and, for each case that could not be counted, why."""
    with tempfile.TemporaryDirectory(prefix="lsb-callgrind-") as tmp:
        out = Path(tmp) / "worker.json"
        command = [VALGRIND, "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
                   "--dump-instr=no", "--dump-line=no", "--compress-pos=no",
                   f"--callgrind-out-file={tmp}/callgrind.out.%p",
                   *worker_command(cases, out)]
        done = subprocess.run(command, cwd=cwd, env={**env, **WORKER_ENV}, capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"the callgrind process failed ({done.returncode}):\n"
                               f"{done.stderr[-3000:]}")
        absent = json.loads(out.read_text())["absent"]
        counts = read_dumps(Path(tmp))
    for case in cases:
        if case not in counts and case not in absent:
            absent[case] = "callgrind wrote no count for it"
    return {c: counts[c] for c in cases if c in counts}, absent


def _measure(names: list[str], out: Path, wall: bool) -> None:
    import torch

    from bench import count_paths, timing

    torch.set_num_threads(1)
    requests = None if wall else ClientRequests()
    if requests is not None and not requests.on_valgrind:
        raise SystemExit("bench.callgrind counts only under valgrind (or pass --wall)")
    absent: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for name in names:
        try:
            statement = count_paths.build(name)
        except count_paths.Absent as why:
            absent[name] = str(why)
            continue
        for _ in range(WARMUP_CALLS):  # first-call costs: dispatch caches, allocations
            statement()
        gc.collect()
        gc.disable()  # a collection inside the count would be noise
        try:
            if requests is not None:
                requests.count(name, statement)
            else:
                seconds[name] = timing.median_seconds(statement, warmup=0, repeats=5,
                                                      device="cpu")
        finally:
            gc.enable()
    out.write_text(json.dumps({"absent": absent, "seconds": seconds}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.callgrind", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="+",
                        help="bench.cases names, e.g. adamw[reference-1x1048576]")
    parser.add_argument("--out", type=Path, required=True,
                        help="JSON: why each absent case is absent, and --wall's seconds")
    parser.add_argument("--wall", action="store_true", help="median wall time, natively")
    args = parser.parse_args(argv)
    _measure(args.cases, args.out, args.wall)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
