"""Ahead-of-time sm_90 / sm_80 compiles of recorded launches, without a GPU or a driver.

Each launch recorded by the traffic meter is specialized exactly as Triton's own launcher
would (``create_function_from_signature``: 16-byte aligned pointers, integers equal to
1 or divisible by 16, ``do_not_specialize`` respected), compiled with
``triton.compiler.ASTSource`` for ``GPUTarget("cuda", arch, 32)`` with the ptxas of the
Triton wheel, and read back:

- registers and spills from ptxas's ``-v`` log, shared memory (Triton's dynamic plus
  ptxas's static), warps and stages from the compile metadata;
- the width of every global load and store in the SASS (``LDG`` / ``STG`` and their
  ``.64`` / ``.128`` forms; the wheel's cuobjdump), ``LDGSTS`` (asynchronous copies,
  i.e. software pipelining) and global atomics;
- the theoretical occupancy from registers, shared memory and warps (:func:`occupancy`);
- the integer width of every address offset in the Triton IR (``tt.addptr``): 64 bits
  everywhere means no offset can wrap past 2**31.

The compiles run in a child process without ``TRITON_INTERPRET`` (under the interpreter
``@triton.jit`` makes interpreted functions, which cannot be compiled):
``python -m kernels.report.compile`` reads launches as JSON on stdin.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass

ARCHS = (90, 80)


@dataclass(frozen=True)
class SMLimits:
    """Per-SM limits of a compute capability that bound the resident thread blocks."""

    max_warps: int
    max_blocks: int
    registers: int
    register_unit: int  # registers are allocated per warp in units of this many
    max_registers_per_thread: int
    shared_bytes: int  # shared memory per SM usable by blocks
    shared_unit: int  # shared memory allocation granularity
    shared_reserved_per_block: int  # system use (CUDA 11+)
    sm_count: int  # SMs of the reference part, for programs per SM at a benchmark's grid


# CUDA C++ Programming Guide, "Technical Specifications per Compute Capability" and the
# CUDA occupancy calculator's allocation granularities: both 9.0 (H100/H200) and 8.0
# (A100) have 64K 32-bit registers and 64 resident warps per SM; they differ in shared
# memory (228 KiB and 164 KiB per SM) and resident blocks (32 on both). SMs: H100/H200
# SXM 132, A100 108 (the datasheets).
SM_LIMITS = {
    90: SMLimits(64, 32, 65536, 256, 255, 228 * 1024, 128, 1024, 132),
    80: SMLimits(64, 32, 65536, 256, 255, 164 * 1024, 128, 1024, 108),
}


def occupancy(arch: int, registers: int, shared_bytes: int, num_warps: int) -> dict:
    """Theoretical occupancy (resident warps / maximum warps per SM) and its limiter."""
    sm = SM_LIMITS[arch]
    regs_per_warp = math.ceil(max(registers, 1) * 32 / sm.register_unit) * sm.register_unit
    by_registers = (sm.registers // regs_per_warp) // num_warps
    block_smem = math.ceil((shared_bytes + sm.shared_reserved_per_block) / sm.shared_unit)
    by_shared = sm.shared_bytes // (block_smem * sm.shared_unit)
    limits = {"warps": sm.max_warps // num_warps, "blocks": sm.max_blocks,
              "registers": by_registers, "shared memory": by_shared}
    blocks = min(limits.values())
    return {"blocks_per_sm": blocks,
            "occupancy": blocks * num_warps / sm.max_warps,
            "limited_by": min(limits, key=limits.get)}


# Whole mnemonics only: LDGDEPBAR (the wait on asynchronous copies) is no load, ATOMS
# (shared memory) no global atomic.
_SASS_OP = re.compile(r"\b(LDGSTS|LDG|STG|ATOMG|ATOM|RED)((?:\.[A-Z0-9_]+)*)(?![A-Z0-9_])")
_NARROW = {"U8": 8, "S8": 8, "U16": 16, "S16": 16}


def _bits(suffixes: list[str]) -> int:
    bits = 128 if "128" in suffixes else 64 if "64" in suffixes else 32
    return next((_NARROW[s] for s in suffixes if s in _NARROW), bits)


def global_accesses(sass: str) -> dict:
    """Counts of global loads, stores and asynchronous copies (``LDGSTS``: software
    pipelining) by width in bits, and of global atomics."""
    tables: dict[str, dict[str, int]] = {"LDG": {}, "STG": {}, "LDGSTS": {}}
    atomics = 0
    for line in sass.splitlines():
        match = _SASS_OP.search(line)
        if not match:
            continue
        op, suffixes = match.group(1), match.group(2).split(".")[1:]
        if op in ("ATOMG", "ATOM", "RED"):
            atomics += 1
            continue
        table = tables[op]
        bits = str(_bits(suffixes))
        table[bits] = table.get(bits, 0) + 1
    copies = tables["LDGSTS"]
    return {"loads": tables["LDG"], "stores": tables["STG"], "async_copies": sum(copies.values()),
            "async_copy_bits": copies, "atomics": atomics}


_ADDPTR = re.compile(r"tt\.addptr[^:]*:\s*[^,]+,\s*(?:tensor<(?:\d+x)*)?i(\d+)")


def address_offset_bits(ttir: str) -> dict:
    """Counts of ``tt.addptr`` ops in the Triton IR by the bit width of their offsets."""
    counts: dict[str, int] = {}
    for match in _ADDPTR.finditer(ttir):
        counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    return counts


def in_flight(arch: int, compiled: dict, programs: int, stage_bytes: float) -> dict:
    """Bytes a kernel has requested from memory and not yet consumed, per SM, at a grid of
    ``programs``: resident programs per SM (occupancy, or the grid spread over the SMs
    when it is smaller) times the bytes one program loads per pipeline stage, times the
    stages in flight (num_stages - 1 with asynchronous copies, else one)."""
    per_sm = min(compiled["blocks_per_sm"], programs / SM_LIMITS[arch].sm_count)
    stages = max(1, compiled["num_stages"] - 1) if compiled["async_copies"] else 1
    return {"programs": programs, "programs_per_sm": per_sm, "stage_bytes": stage_bytes,
            "stages_in_flight": stages, "bytes_in_flight_per_sm": per_sm * stage_bytes * stages}


def _ptxas_figures(log: str) -> dict:
    def number(pattern: str) -> int:
        found = re.search(pattern, log)
        return int(found.group(1)) if found else 0

    return {"registers": number(r"Used (\d+) registers"),
            "spill_stores": number(r"(\d+) bytes spill stores"),
            "spill_loads": number(r"(\d+) bytes spill loads"),
            "stack_bytes": number(r"(\d+) bytes stack frame"),
            "static_shared_bytes": number(r"(\d+) bytes smem")}


class _StandIn:
    """What Triton's specializer reads of a tensor argument: dtype and address."""

    def __init__(self, dtype: str, aligned: bool):
        import torch

        self.dtype = getattr(torch, dtype)
        self._ptr = 0 if aligned else 4

    def data_ptr(self) -> int:
        return self._ptr


def _argument(value):
    return _StandIn(value["tensor"], value["aligned"]) if isinstance(value, dict) else value


def compile_one(kernel: str, args: list, kwargs: dict, arch: int) -> dict:
    """Compiles one recorded launch for ``sm_<arch>``; the figures described above."""
    import importlib

    import triton
    from triton import knobs
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, make_backend
    from triton.runtime.jit import create_function_from_signature
    from triton.tools.disasm import get_sass

    module_name, qualname = kernel.split(":")
    fn = importlib.import_module(module_name)
    for part in qualname.split("."):
        fn = getattr(fn, part)
    target = GPUTarget("cuda", arch, 32)
    backend = make_backend(target)
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    kw = {k: _argument(v) for k, v in kwargs.items()}
    bound, specialization, options = binder(*map(_argument, args), **kw)
    options, signature, constexprs, attrs = fn._pack_args(backend, kw, bound, specialization,
                                                          options)
    knobs.nvidia.dump_ptxas_log = True
    knobs.compilation.always_compile = True  # a cache hit would print no ptxas log
    log = io.StringIO()
    with contextlib.redirect_stdout(log):  # ptxas's -v log is printed when dumped
        compiled = triton.compile(ASTSource(fn, signature, constexprs, attrs), target=target,
                                  options=options.__dict__)
    figures = _ptxas_figures(log.getvalue())
    shared = compiled.metadata.shared + figures["static_shared_bytes"]
    num_warps = compiled.metadata.num_warps
    return {
        "arch": f"sm_{arch}",
        **figures,
        "shared_bytes": shared,
        "num_warps": num_warps,
        "num_stages": compiled.metadata.num_stages,
        **occupancy(arch, figures["registers"], shared, num_warps),
        **global_accesses(get_sass(compiled.asm["cubin"])),
        "address_offset_bits": address_offset_bits(compiled.asm["ttir"]),
    }


def compile_launches(launches: list[dict], archs: tuple[int, ...] = ARCHS) -> list[list[dict]]:
    """Compiles ``[{"kernel", "args", "kwargs"}, ...]`` in a child process without the
    interpreter; for each launch, one result per arch."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # the parent's modules
    request = json.dumps({"launches": launches, "archs": list(archs)})
    done = subprocess.run([sys.executable, "-m", "kernels.report.compile"], input=request,
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"compiling the kernels failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout)


def main() -> int:
    request = json.load(sys.stdin)
    results = [[compile_one(launch["kernel"], launch["args"], launch["kwargs"], arch)
                for arch in request["archs"]] for launch in request["launches"]]
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
