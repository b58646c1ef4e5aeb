"""Pointer tables of the fused multi-tensor launches, kept on the device between steps.

A launch over many tensors reads, per tensor, the addresses of its operands and its
length, and per program the (tensor, first element) pair it updates. A
:class:`LaunchTable` holds all of that in one int64 buffer on the device, built once for
a set of tensors: a step whose tensors are where they were reuses it as it is (no host
work, no copy), and a step whose gradients moved rewrites one address column and copies
the buffer again. Nothing of it depends on values, so a launch reading it can be
captured in a CUDA graph.

Copies to the device go through page-locked staging buffers, never a temporary one:

- outside a graph capture, one staging buffer per table, reused once the previous copy
  from it has finished (an event says when);
- inside a capture, a buffer that no later write touches: the graph replays the copy
  from it, so a replay sees the addresses of its capture even if eager steps rewrote the
  table in between (and once a table has been captured, every eager launch copies its
  own rows again, since a replay may have rewritten them). One such buffer is allocated
  ahead of each capture (page-locked allocation is not allowed while a stream is
  capturing), so a capture may move a table's gradients once; a second move within the
  same capture raises.

On the CPU (the Triton interpreter) the host buffer is the table itself.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def _addresses(tensors: list[Tensor]) -> np.ndarray:
    return np.fromiter(map(Tensor.data_ptr, tensors), np.int64, len(tensors))


def _capturing(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_current_stream_capturing()


class LaunchTable:
    """The table of one launch over ``columns`` (lists of equally many tensors).

    Rows, in order: one address column per entry of ``columns`` (the operands walked
    element by element; ``columns[0]`` gives the lengths), one per entry of ``scalars``
    (operands read once per tensor), the lengths, then each program's tensor index and
    first element. ``chunk`` elements per program.
    """

    def __init__(
        self,
        columns: list[list[Tensor]],
        device: torch.device,
        chunk: int,
        scalars: tuple[list[Tensor], ...] = (),
    ):
        n = len(columns[0])
        numels = np.fromiter(map(Tensor.numel, columns[0]), np.int64, n)
        self.programs = -(-numels // chunk)
        """Programs of each tensor."""
        self.total = int(self.programs.sum())
        """Programs of the launch (its grid)."""
        chunk_tensor = np.repeat(np.arange(n, dtype=np.int64), self.programs)
        first_program = np.cumsum(self.programs) - self.programs
        chunk_start = (np.arange(self.total) - first_program[chunk_tensor]) * chunk
        self._walked = len(columns)
        rows = [*map(_addresses, columns), *map(_addresses, scalars)]
        rows += [numels, chunk_tensor, chunk_start]
        self._sizes = [len(r) for r in rows]
        self._offsets = np.cumsum([0, *self._sizes])
        self.device = device
        self.host = np.concatenate(rows)
        self._misaligned = {k for k in range(self._walked) if (rows[k] % 16).any()}
        if device.type == "cuda":
            self._table = torch.empty(len(self.host), dtype=torch.int64, device=device)
            self._uploader = _Uploader(self)
        else:
            self._table = torch.from_numpy(self.host)
            self._uploader = None
        self._views = list(self._table.split(self._sizes))

    @property
    def aligned(self) -> bool:
        """Whether every walked operand starts on a 16-byte boundary (the kernels'
        ``ALIGNED``: whole blocks then move in 128-bit accesses)."""
        return not self._misaligned

    def addresses(self, k: int) -> np.ndarray:
        """Row ``k``'s addresses as the table holds them (a host view)."""
        return self.host[self._offsets[k] : self._offsets[k + 1]]

    def set_addresses(self, k: int, tensors: list[Tensor]) -> None:
        """Point row ``k`` at ``tensors`` (as many as the row has), e.g. new gradients."""
        addresses = _addresses(tensors)
        self.addresses(k)[:] = addresses
        if k < self._walked:
            self._misaligned.discard(k)
            if (addresses % 16).any():
                self._misaligned.add(k)
        if self._uploader is not None:
            self._uploader.changed()

    def views(self) -> list[Tensor]:
        """The rows on the device, current for a launch on the current stream: copied
        there first when they changed (or, inside a graph capture, by the graph)."""
        if self._uploader is not None:
            self._uploader.upload()
        return self._views


class _Uploader:
    """Host-to-device copies of a CUDA table; see the module docstring."""

    def __init__(self, table: LaunchTable):
        self._table = table
        self._staging = torch.empty(len(table.host), dtype=torch.int64, pin_memory=True)
        self._spare: Tensor | None = torch.empty_like(self._staging, pin_memory=True)
        self._frozen: list[Tensor] = []  # staging buffers graphs replay from: never rewritten
        self._copied = torch.cuda.Event()
        self._current = False  # the last eager copy holds the host rows

    def changed(self) -> None:
        self._current = False

    def upload(self) -> None:
        table = self._table
        if _capturing(table.device):
            table._table.copy_(self._frozen_copy(), non_blocking=True)
            return
        if self._spare is None:
            self._spare = torch.empty_like(self._staging, pin_memory=True)
        # A graph's replay rewrites the rows with its capture's: once a table has been
        # captured, every eager launch copies its own rows again.
        if self._current and not self._frozen:
            return
        self._copied.synchronize()  # the previous copy from the staging buffer is done
        self._staging.numpy()[:] = self._table.host
        table._table.copy_(self._staging, non_blocking=True)
        self._copied.record()
        self._current = True

    def _frozen_copy(self) -> Tensor:
        """A staging buffer holding the host rows that no later write will touch."""
        host = self._table.host
        if self._frozen and np.array_equal(self._frozen[-1].numpy(), host):
            return self._frozen[-1]
        if self._spare is None:
            raise RuntimeError(
                "a fused optimizer step's gradients moved twice within one CUDA graph "
                "capture; keep them in place within a capture (zero_grad(set_to_none=False)"
                " after the first step) or run an eager step between captures"
            )
        staging, self._spare = self._spare, None
        staging.numpy()[:] = host
        self._frozen.append(staging)
        return staging
