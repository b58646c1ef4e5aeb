"""One vocabulary for choosing kernel backends: one environment variable per kernel family.

- ``LSB_SCAN_BACKEND``: ``sequential``, ``chunked``, ``triton`` or ``auto`` (``kernels.diag_scan``).
- ``LSB_OPTIM_BACKEND``: ``torch``, ``triton`` or ``auto`` (``kernels.optim``).

Each variable only takes effect where a call asks for ``backend="auto"``; an explicit
argument wins. Unset or empty means ``auto``. The old ``LSB_BACKEND``, which switched
both families at once, is refused with an error naming the two variables: left in an
environment it would otherwise be silently ignored.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

import torch

LEGACY_VARIABLE = "LSB_BACKEND"


@dataclass(frozen=True)
class Family:
    """A kernel family's backend choice: its variable and its valid values."""

    name: str
    variable: str
    backends: tuple[str, ...]  # the concrete backends, "auto" excluded

    @property
    def choices(self) -> tuple[str, ...]:
        return ("auto",) + self.backends


SCAN = Family("scan", "LSB_SCAN_BACKEND", ("sequential", "chunked", "triton"))
OPTIM = Family("optim", "LSB_OPTIM_BACKEND", ("torch", "triton"))
FAMILIES = (SCAN, OPTIM)


def _check_legacy() -> None:
    if LEGACY_VARIABLE in os.environ:
        raise ValueError(
            f"{LEGACY_VARIABLE} no longer selects kernel backends; unset it and set "
            + " and/or ".join(f"{f.variable} ({'|'.join(f.choices)})" for f in FAMILIES)
        )


def env_choice(family: Family) -> str:
    """The family's variable: one of ``family.choices`` (``"auto"`` when unset or empty).

    Raises ``ValueError`` naming the variable and its valid values for anything else, and
    when the old ``LSB_BACKEND`` is set.
    """
    _check_legacy()
    value = os.environ.get(family.variable, "").strip().lower() or "auto"
    if value not in family.choices:
        raise ValueError(
            f"{family.variable}={value!r} is not a {family.name} backend; "
            f"valid values: {', '.join(family.choices)}"
        )
    return value


def check_choice(family: Family, backend: str) -> str:
    """``backend`` itself when it is one of the family's choices, else ``ValueError``."""
    if backend not in family.choices:
        raise ValueError(f"backend must be one of {family.choices}, got {backend!r}")
    return backend


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def triton_interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


#: Parameter dtypes the fused optimizer kernels take (complex64 as real pairs).
OPTIM_TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def resolve_scan_backend(backend: str, device: torch.device) -> str:
    """The concrete scan backend for ``backend`` on ``device``.

    ``"auto"`` is ``LSB_SCAN_BACKEND`` when set, else Triton on CUDA (when installed) and
    the chunked scan elsewhere. An explicit ``"triton"`` needs CUDA or the interpreter.
    """
    if check_choice(SCAN, backend) == "auto":
        backend = env_choice(SCAN)
    runs_triton = triton_available() and (device.type == "cuda" or triton_interpreted())
    if backend == "auto":
        return "triton" if device.type == "cuda" and runs_triton else "chunked"
    if backend == "triton" and not runs_triton:
        raise ValueError(
            f"backend='triton' needs triton and CUDA tensors (got device {device}), or "
            "TRITON_INTERPRET=1 set before triton is imported; use backend='chunked'"
        )
    return backend


def resolve_optim_backend(backend: str, tensors: list[torch.Tensor]) -> str:
    """``"torch"`` or ``"triton"`` for these (real) parameter tensors.

    ``"auto"`` (after ``LSB_OPTIM_BACKEND``) picks Triton when every tensor is on CUDA in a
    dtype the kernels support, else the reference. An explicit ``"triton"`` raises
    ``ValueError`` for tensors it cannot run on (CPU tensors run only under the Triton
    interpreter, ``TRITON_INTERPRET=1``).
    """
    choice = env_choice(OPTIM) if check_choice(OPTIM, backend) == "auto" else backend
    if choice == "auto":
        fused = all(t.is_cuda and t.dtype in OPTIM_TRITON_DTYPES for t in tensors)
        return "triton" if fused else "torch"
    if choice == "triton":
        for t in tensors:
            if t.dtype not in OPTIM_TRITON_DTYPES:
                raise ValueError(
                    f"the triton backend supports float32, bfloat16 and float16 parameters "
                    f"(complex64 as real pairs), got {t.dtype}; use backend='torch'"
                )
            if not (t.is_cuda or (t.device.type == "cpu" and triton_interpreted())):
                raise ValueError(
                    f"the triton backend needs CUDA tensors (or TRITON_INTERPRET=1 for CPU "
                    f"tensors), got a tensor on {t.device}"
                )
    return choice


def backend_settings() -> dict[str, dict]:
    """For each family: its variable, current value, valid values and what ``auto``
    resolves to on this machine (CUDA tensors when a GPU is present, else CPU tensors;
    float32 parameters for the optimizers). ``lsb doctor`` prints it."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    probe = torch.empty(0, device=device)
    resolvers = {SCAN.name: lambda: resolve_scan_backend("auto", device),
                 OPTIM.name: lambda: resolve_optim_backend("auto", [probe])}
    settings = {}
    for family in FAMILIES:
        entry = {"variable": family.variable,
                 "value": os.environ.get(family.variable, ""),
                 "valid": list(family.choices),
                 "device": str(device)}
        try:
            entry["auto"] = resolvers[family.name]()
        except ValueError as err:  # a bad value: report it rather than fail the listing
            entry["auto"] = None
            entry["error"] = str(err)
        settings[family.name] = entry
    return settings
