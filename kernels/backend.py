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


def backend_settings() -> dict[str, dict]:
    """For each family: its variable, current value, valid values and what ``auto``
    resolves to on this machine (CUDA tensors when a GPU is present, else CPU tensors).
    ``lsb doctor`` prints it."""
    import torch

    from kernels.optim.backend import resolve_backend as resolve_optim
    from kernels.scan import resolve_backend as resolve_scan

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    probe = torch.empty(0, device=device)
    resolvers = {SCAN.name: lambda: resolve_scan("auto", device),
                 OPTIM.name: lambda: resolve_optim("auto", [probe])}
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
