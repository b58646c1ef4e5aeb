"""Fused AdamW and NGN steps in Triton; same signatures as ``kernels.optim.reference``.

Multi-tensor strategy: a pointer table (:mod:`kernels.optim.table`). Each launch reads
one int64 table on the device holding, per tensor, the addresses of its parameter,
gradient and state and its length, and per program a (tensor, start) pair: program ``c``
updates elements ``[start, start + CHUNK)`` of one tensor. One launch covers every
tensor of a group with one dtype, so 1,000 small tensors cost one launch instead of
1,000, and nothing is copied: packing into a flat buffer would add a gather and a
scatter pass, and making parameters views of one flat allocation breaks models that
move or re-create them. Tensors need only be dense, with the state laid out like the
parameter.

The prepared steps (:class:`AdamWStep`, :class:`SqNormStep`, :class:`NgnStep`) keep
their tables across steps; the optimizers hold one per group, so a step whose tensors
have not moved does no per-tensor host work, and one whose gradients moved rewrites only
their address column. The functions of the reference's signatures build a table per call.

One launch is the whole AdamW step of a group and dtype: the step counts are read and
incremented by the kernel itself (the last program to finish, counted by an atomic
ticket, increments them once every program has read them). Step counts, bias
corrections, the NGN loss and γ stay on the device: no host syncs, and nothing in a
launch depends on host values that change from step to step, so steps can be captured
in a CUDA graph.

NGN's update can also *move* a step already taken to another γ (``p(1-γ'wd) - γ'g``
from ``p(1-γwd) - γg`` and ``g``, and the momentum buffer alike): one-pass NGN takes its
step with the gradient hooks' ‖g‖², sums ‖g‖² of the gradients it reads as it updates,
and a second launch of the same kernel moves the step to the γ of that sum, its
programs returning at once when the two agree (see :mod:`kernels.optim.hooks`).

Access widths: a program's range splits into whole blocks, loaded and stored without a
mask, and a masked tail (only a tensor's last program has one). When every address of
a launch is 16-byte aligned (checked on the host; views at an element offset are not)
the kernels are told so (``ALIGNED``), and each thread moves 16 bytes of an operand in
one 128-bit access; otherwise they run the same code with 32-bit accesses.
``python -m kernels.report`` shows the widths, registers and occupancy on sm_90/sm_80.

The bytes a step must move per parameter are modelled in ``kernels.optim.traffic``.
"""

import collections
import operator

import numpy as np
import torch
import triton
import triton.language as tl
from torch import Tensor

from kernels.optim.layout import is_dense, like
from kernels.optim.reference import log_beta, ngn_scale
from kernels.optim.table import LaunchTable

# Elements per program: several blocks amortise the table reads and the bias
# corrections, and 16M parameters still give 2,048 programs to spread over the SMs.
CHUNK = 1 << 13
NUM_WARPS = 8
# Step counts the last AdamW program increments per iteration: one per thread.
_STEP_ROWS = tl.constexpr(32 * NUM_WARPS)

_DTYPE = operator.attrgetter("dtype")

LAUNCHES: collections.Counter = collections.Counter()
"""Kernel launches by name (``"adamw"``, ``"sq_norm"``, ``"ngn"``), for tests."""


@triton.jit
def _program_range(numels, chunk_tensor, chunk_start, CHUNK: tl.constexpr, BLOCK: tl.constexpr):
    """This program's tensor ``t`` and elements ``[start, end)``, split at ``body_end``
    into whole blocks (loaded unmasked) and a masked tail of under one block."""
    c = tl.program_id(0)
    t = tl.load(chunk_tensor + c)
    start = tl.multiple_of(tl.load(chunk_start + c), CHUNK)  # the table holds k * CHUNK
    end = tl.minimum(start + CHUNK, tl.load(numels + t))
    body_end = start + (end - start) // BLOCK * BLOCK
    return t, start, body_end, end


@triton.jit
def _address(column, t, POINTER: tl.constexpr, ALIGNED: tl.constexpr):
    """Tensor ``t``'s address from a table column, as a ``POINTER``; ``ALIGNED`` (checked
    on the host) tells the compiler it is 16-byte aligned, so whole blocks move in
    128-bit accesses."""
    ptr = tl.load(column + t).to(POINTER)
    if ALIGNED:
        ptr = tl.multiple_of(ptr, 16)
    return ptr


@triton.jit
def _adamw_block(
    p_ptr, g_ptr, m_ptr, v_ptr, offs, mask,
    one_minus_beta1, beta2, one_minus_beta2, eps, decay, step_size, bias_correction2_sqrt,
):  # fmt: skip
    p = tl.load(p_ptr + offs, mask=mask).to(tl.float32)
    g = tl.load(g_ptr + offs, mask=mask).to(tl.float32)
    m = tl.load(m_ptr + offs, mask=mask)
    v = tl.load(v_ptr + offs, mask=mask)
    m = m + one_minus_beta1 * (g - m)
    v = v * beta2 + one_minus_beta2 * g * g
    denom = tl.div_rn(tl.sqrt_rn(v), bias_correction2_sqrt) + eps
    p = p * decay - step_size * tl.div_rn(m, denom)
    tl.store(m_ptr + offs, m, mask=mask)
    tl.store(v_ptr + offs, v, mask=mask)
    tl.store(p_ptr + offs, p.to(p_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _count_steps_when_last(tickets, step_ptrs, n_tensors, ROWS: tl.constexpr):
    """Called by every program after its last read of a step count: the last program to
    arrive (its ticket says so) adds one to every tensor's count, ``ROWS`` at a time
    (one per thread), and resets the ticket counter for the next launch. The atomic
    orders each program's reads before it."""
    ticket = tl.atomic_add(tickets, 1)
    if ticket == tl.num_programs(0) - 1:
        for first in range(0, n_tensors, ROWS):
            rows = first + tl.arange(0, ROWS)
            mask = rows < n_tensors
            ptrs = tl.load(step_ptrs + rows, mask=mask, other=0).to(tl.pointer_type(tl.float32))
            tl.store(ptrs, tl.load(ptrs, mask=mask) + 1.0, mask=mask)
        tl.store(tickets, 0)


@triton.jit
def _adamw_kernel(
    p_ptrs, g_ptrs, m_ptrs, v_ptrs, step_ptrs, numels, chunk_tensor, chunk_start,
    tickets, n_tensors,
    lr, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, decay, log_beta1, log_beta2,
    p_ref, CHUNK: tl.constexpr, BLOCK: tl.constexpr, ALIGNED: tl.constexpr,
):  # fmt: skip
    # p_ref: one of the parameters, passed only for its pointer type.
    t, start, body_end, end = _program_range(numels, chunk_tensor, chunk_start, CHUNK, BLOCK)
    p_ptr = _address(p_ptrs, t, p_ref.dtype, ALIGNED)
    g_ptr = _address(g_ptrs, t, p_ref.dtype, ALIGNED)
    m_ptr = _address(m_ptrs, t, tl.pointer_type(tl.float32), ALIGNED)
    v_ptr = _address(v_ptrs, t, tl.pointer_type(tl.float32), ALIGNED)
    # The count before this step, plus one: the kernel increments the counts at its end.
    step = tl.load(tl.load(step_ptrs + t).to(tl.pointer_type(tl.float32))).to(tl.float64) + 1.0
    _count_steps_when_last(tickets, step_ptrs, n_tensors, _STEP_ROWS)
    # 1 - beta**t in fp64: in fp32 it loses relative accuracy while beta**t is near 1.
    bias_correction1 = 1.0 - tl.exp(step * log_beta1)
    bias_correction2 = 1.0 - tl.exp(step * log_beta2)
    step_size = (lr / bias_correction1).to(tl.float32)
    bias_correction2_sqrt = tl.sqrt(bias_correction2).to(tl.float32)
    for off in range(start, body_end, BLOCK):
        _adamw_block(
            p_ptr, g_ptr, m_ptr, v_ptr, off + tl.arange(0, BLOCK), None,
            one_minus_beta1, beta2, one_minus_beta2, eps, decay, step_size,
            bias_correction2_sqrt,
        )  # fmt: skip
    if body_end < end:
        offs = body_end + tl.arange(0, BLOCK)
        _adamw_block(
            p_ptr, g_ptr, m_ptr, v_ptr, offs, offs < end,
            one_minus_beta1, beta2, one_minus_beta2, eps, decay, step_size,
            bias_correction2_sqrt,
        )  # fmt: skip


@triton.jit
def _sq_norm_kernel(
    g_ptrs, numels, chunk_tensor, chunk_start, partials,
    g_ref, CHUNK: tl.constexpr, BLOCK: tl.constexpr, ALIGNED: tl.constexpr,
):  # fmt: skip
    t, start, body_end, end = _program_range(numels, chunk_tensor, chunk_start, CHUNK, BLOCK)
    g_ptr = _address(g_ptrs, t, g_ref.dtype, ALIGNED)
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for off in range(start, body_end, BLOCK):
        g = tl.load(g_ptr + off + tl.arange(0, BLOCK)).to(tl.float32)
        acc += g * g
    offs = body_end + tl.arange(0, BLOCK)
    g = tl.load(g_ptr + offs, mask=offs < end).to(tl.float32)  # the tail; none when empty
    acc += g * g
    tl.store(partials + tl.program_id(0), tl.sum(acc, axis=0))


@triton.jit
def _ngn_block(
    p_ptr, g_ptr, buf_ptr, offs, mask, acc,
    scale, g_factor, buf_factor, buf_g_factor, buf_carry,
    HAS_MOMENTUM: tl.constexpr, SQ_NORM: tl.constexpr,
):  # fmt: skip
    p = tl.load(p_ptr + offs, mask=mask).to(tl.float32)
    g = tl.load(g_ptr + offs, mask=mask).to(tl.float32)
    if HAS_MOMENTUM:
        buf = tl.load(buf_ptr + offs, mask=mask)
        new_buf = buf * buf_factor + buf_g_factor * g
        tl.store(buf_ptr + offs, new_buf, mask=mask)
        p = (p + buf_carry * buf) * scale - new_buf
    else:
        p = p * scale - g_factor * g
    tl.store(p_ptr + offs, p.to(p_ptr.dtype.element_ty), mask=mask)
    if SQ_NORM:
        acc += g * g
    return acc


@triton.jit
def _ngn_kernel(
    p_ptrs, g_ptrs, buf_ptrs, numels, chunk_tensor, chunk_start, gamma_ptr, taken_ptr,
    partials, weight_decay, momentum, one_minus_momentum,
    p_ref, HAS_MOMENTUM: tl.constexpr, SQ_NORM: tl.constexpr, CHUNK: tl.constexpr,
    BLOCK: tl.constexpr, ALIGNED: tl.constexpr,
):  # fmt: skip
    # The step of size gamma. taken < 0: a fresh step (p(1 - γ wd) - γ g, or through the
    # momentum buffer). taken >= 0: this step was already taken with γ = taken; move it
    # to gamma (nothing to do when they are equal, the one-pass check's usual outcome).
    gamma = tl.load(gamma_ptr)
    taken = tl.load(taken_ptr)
    if gamma != taken:
        t, start, body_end, end = _program_range(numels, chunk_tensor, chunk_start, CHUNK, BLOCK)
        p_ptr = _address(p_ptrs, t, p_ref.dtype, ALIGNED)
        g_ptr = _address(g_ptrs, t, p_ref.dtype, ALIGNED)
        buf_ptr = _address(buf_ptrs, t, tl.pointer_type(tl.float32), ALIGNED)
        decay = 1.0 - gamma * weight_decay
        if taken < 0:
            scale, g_factor = decay, gamma
            buf_factor, buf_g_factor, buf_carry = momentum, one_minus_momentum * gamma, 0.0
        else:
            # p was p0(1 - taken wd) - taken g (or - buf); recover p0 and step again.
            scale = decay / (1.0 - taken * weight_decay)
            g_factor = gamma - taken * scale
            buf_factor, buf_g_factor, buf_carry = 1.0, one_minus_momentum * (gamma - taken), 1.0
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for off in range(start, body_end, BLOCK):
            acc = _ngn_block(
                p_ptr, g_ptr, buf_ptr, off + tl.arange(0, BLOCK), None, acc,
                scale, g_factor, buf_factor, buf_g_factor, buf_carry, HAS_MOMENTUM, SQ_NORM,
            )  # fmt: skip
        if body_end < end:
            offs = body_end + tl.arange(0, BLOCK)
            acc = _ngn_block(
                p_ptr, g_ptr, buf_ptr, offs, offs < end, acc,
                scale, g_factor, buf_factor, buf_g_factor, buf_carry, HAS_MOMENTUM, SQ_NORM,
            )  # fmt: skip
        if SQ_NORM:
            tl.store(partials + tl.program_id(0), tl.sum(acc, axis=0))


def block_size(kernel: str, dtype: torch.dtype) -> int:
    """Elements per loop iteration of ``kernel`` (``"adamw"``, ``"sq_norm"``, ``"ngn"``)
    on ``dtype`` parameters, with ``NUM_WARPS`` warps.

    Each thread moves 16 bytes of every parameter-sized operand per iteration, one
    128-bit access (4 fp32 or 8 bf16/fp16 elements), at no more than 64 registers
    (50 % occupancy on sm_90). AdamW on 2-byte parameters is the exception: 8 elements
    per thread, with their fp32 moments, take 88 registers (25 %), so it moves 4 (64-bit
    parameter and gradient accesses, 128-bit moments) and stays at 45 registers.
    """
    itemsize = torch.empty((), dtype=dtype).element_size()
    per_thread = 16 // itemsize
    if kernel == "adamw" and itemsize < 4:
        per_thread = 4
    return per_thread * 32 * NUM_WARPS


def _check_layout(params: list[Tensor], *states: list[Tensor]) -> None:
    for i, p in enumerate(params):
        if not is_dense(p):
            raise ValueError(
                f"the triton backend needs dense parameters; parameter {i} has shape "
                f"{tuple(p.shape)} and strides {p.stride()} (use backend='torch')"
            )
        for state in states:
            if state[i].stride() != p.stride() or state[i].dtype != torch.float32:
                raise ValueError(
                    f"the triton backend needs fp32 optimizer state laid out like its "
                    f"parameter; parameter {i} has strides {p.stride()}, its state "
                    f"{state[i].stride()} ({state[i].dtype})"
                )


def _partitions(params: list[Tensor]) -> dict[tuple, list[int]]:
    """Indices of ``params`` grouped by (device, dtype): one launch each."""
    parts: dict[tuple, list[int]] = collections.defaultdict(list)
    for i, p in enumerate(params):
        parts[(p.device, p.dtype)].append(i)
    return parts


def _table(
    columns: list[list[Tensor]], device: torch.device, chunk: int, scalars: tuple = ()
) -> tuple[list[Tensor], np.ndarray, bool]:
    """A one-off launch table (see :class:`kernels.optim.table.LaunchTable`): its rows on
    ``device``, the number of programs of each tensor, and whether every address in
    ``columns`` is 16-byte aligned (the kernels' ``ALIGNED``)."""
    table = LaunchTable(columns, device, chunk, scalars)
    return table.views(), table.programs, table.aligned


def _launch_options(kernel: str, dtype: torch.dtype, chunk: int, aligned: bool) -> dict:
    block = block_size(kernel, dtype)
    if chunk % block:
        raise ValueError(f"chunk must be a multiple of {kernel}'s block of {block}, got {chunk}")
    return dict(CHUNK=chunk, BLOCK=block, ALIGNED=aligned, num_warps=NUM_WARPS)


class _Gradients:
    """A launch's gradients as its table points at them: each one itself, or, when its
    layout does not suit the kernel (other strides or dtype than its parameter's, or not
    dense when there is no parameter), a copy in a buffer that suits, refreshed before
    every launch so that the table's address stays valid. No gradient is held: each
    launch is given its gradients."""

    def __init__(self, params: list[Tensor] | None):
        self._params = params
        self.copies: list[tuple[Tensor, int]] = []  # (buffer, the gradient's position)
        self._buffers: dict[int, Tensor] = {}
        if params is not None:  # the layouts that need no copy, for one check per list
            self._strides = list(map(Tensor.stride, params))
            self._dtypes = list(map(_DTYPE, params))

    def _suits(self, i: int, g: Tensor) -> bool:
        if self._params is None:
            return is_dense(g)
        return like(g, self._params[i]) is g

    def _all_suit(self, grads: list[Tensor]) -> bool:
        """The usual case, checked with a few passes that run in C."""
        if self._params is None:
            return all(map(Tensor.is_contiguous, grads))
        return (
            list(map(Tensor.stride, grads)) == self._strides
            and list(map(_DTYPE, grads)) == self._dtypes
        )

    def bind(self, grads: list[Tensor]) -> list[Tensor]:
        """The tensors to point the table at for ``grads``."""
        if self._all_suit(grads):
            self.copies = []
            return grads
        bound, self.copies = [], []
        for i, g in enumerate(grads):
            if self._suits(i, g):
                bound.append(g)
                continue
            buffer = self._buffers.get(i)
            if buffer is None or buffer.shape != g.shape:
                buffer = self._buffers[i] = (
                    torch.empty(g.shape, dtype=g.dtype, device=g.device)  # contiguous
                    if self._params is None
                    else torch.empty_like(self._params[i])  # the parameter's strides
                )
            self.copies.append((buffer, i))
            bound.append(buffer)
        return bound

    def refresh(self, grads: list[Tensor]) -> None:
        for buffer, i in self.copies:
            buffer.copy_(grads[i])


class _Launch:
    """One (device, dtype) partition of a prepared step: the positions of its tensors in
    the step's lists, its table, and its gradients (table row ``grad_row``)."""

    def __init__(self, index, columns, scalars, kernel: str, chunk: int, grad_row: int, params):
        self.index = index
        self._everything = index == list(range(len(index)))  # the whole step, in order
        self.device, self.dtype = columns[0][0].device, columns[0][0].dtype
        self.grads = _Gradients(params)
        self._grad_row = grad_row
        columns = list(columns)
        columns[grad_row] = self.grads.bind(columns[grad_row])
        self.table = LaunchTable(columns, self.device, chunk, scalars)
        self.kernel, self.chunk = kernel, chunk
        # The kernels' argument that gives the pointers' dtype (not a gradient: a launch
        # keeps none alive between steps).
        self.pointer_type = torch.empty(1, dtype=self.dtype, device=self.device)

    def pick(self, values: list) -> list:
        """This launch's entries of a per-tensor list of the step."""
        if self._everything and len(values) == len(self.index):
            return values
        return [values[i] for i in self.index]

    def set_grads(self, grads: list[Tensor]) -> None:
        self.table.set_addresses(self._grad_row, self.grads.bind(self.pick(grads)))

    def rows(self, grads: list[Tensor]) -> list[Tensor]:
        """The table on the device, with the copies of ``grads`` (the step's gradients,
        as at the last ``set_grads``) refreshed."""
        if self.grads.copies:
            self.grads.refresh(self.pick(grads))
        return self.table.views()

    def options(self) -> dict:
        return _launch_options(self.kernel, self.dtype, self.chunk, self.table.aligned)


def _launches(kernel, chunk, columns, scalars=(), grad_row=1, match_params=True):
    """One :class:`_Launch` per (device, dtype) of ``columns[0]``."""
    launches = []
    for index in _partitions(columns[0]).values():
        cols = [[col[i] for i in index] for col in columns]
        scal = tuple([col[i] for i in index] for col in scalars)
        launches.append(
            _Launch(index, cols, scal, kernel, chunk, grad_row, cols[0] if match_params else None)
        )
    return launches


class AdamWStep:
    """The fused AdamW step of these tensors, prepared once (tables built, layouts
    checked); calling it takes one step. See :func:`adamw_step_triton`."""

    def __init__(self, params, grads, exp_avgs, exp_avg_sqs, steps, *, chunk: int = CHUNK):
        _check_layout(params, exp_avgs, exp_avg_sqs)
        columns = [params, grads, exp_avgs, exp_avg_sqs]
        self._launches = _launches("adamw", chunk, columns, (steps,))
        self._steps = [launch.pick(steps) for launch in self._launches]
        self._tickets = [torch.zeros(1, dtype=torch.int32, device=x.device) for x in self._launches]

    def set_grads(self, grads: list[Tensor]) -> None:
        """Point the step at new gradients (one per parameter, as at preparation)."""
        for launch in self._launches:
            launch.set_grads(grads)

    def __call__(self, grads: list[Tensor], lr, beta1, beta2, eps, weight_decay) -> None:
        for launch, steps, tickets in zip(self._launches, self._steps, self._tickets, strict=True):
            if launch.table.total == 0:  # only empty tensors: no program to count their steps
                torch._foreach_add_(steps, 1)
                continue
            _adamw_kernel[(launch.table.total,)](
                *launch.rows(grads), tickets, len(steps),
                float(lr), float(beta1), 1.0 - beta1, float(beta2), 1.0 - beta2, float(eps),
                1.0 - lr * weight_decay, log_beta(beta1), log_beta(beta2),
                launch.pointer_type, **launch.options(),
            )  # fmt: skip
            LAUNCHES["adamw"] += 1


class SqNormStep:
    """``‖g‖²`` of each of several lists of gradients, prepared once: one reduction launch
    per (device, dtype) over all lists, writing one partial sum per program (no atomics,
    so it is deterministic). Calling it with the lists returns the sums (0-dim fp32)."""

    def __init__(self, grad_lists: list[list[Tensor]], *, chunk: int = CHUNK):
        self._sizes = [len(grads) for grads in grad_lists]
        flat = [g for grads in grad_lists for g in grads]
        owner = [j for j, grads in enumerate(grad_lists) for _ in grads]
        self._launches = _launches("sq_norm", chunk, [flat], grad_row=0, match_params=False)
        self._partials = [
            torch.empty(max(x.table.total, 1), dtype=torch.float32, device=x.device)
            for x in self._launches
        ]
        # Programs follow tensor order and lists are contiguous in it, so each list's
        # partial sums are one run of its launch's partials.
        self._runs: list[list[Tensor]] = [[] for _ in grad_lists]
        for launch, partials in zip(self._launches, self._partials, strict=True):
            counts = collections.Counter()
            for i, programs in zip(launch.index, launch.table.programs.tolist(), strict=True):
                counts[owner[i]] += programs
            begin = 0
            for j, count in counts.items():
                self._runs[j].append(partials[begin : begin + count])
                begin += count
        self._device = flat[0].device if flat else torch.device("cpu")

    def set_grads(self, grad_lists: list[list[Tensor]]) -> None:
        flat = [g for grads in grad_lists for g in grads]
        for launch in self._launches:
            launch.set_grads(flat)

    def __call__(self, grad_lists: list[list[Tensor]]) -> list[Tensor]:
        flat = None
        for launch, partials in zip(self._launches, self._partials, strict=True):
            if launch.table.total:
                if launch.grads.copies and flat is None:
                    flat = [g for grads in grad_lists for g in grads]
                _sq_norm_kernel[(launch.table.total,)](
                    *launch.rows(flat), partials, launch.pointer_type, **launch.options()
                )
                LAUNCHES["sq_norm"] += 1
        sums = []
        for runs in self._runs:
            total = None
            for run in runs:
                part = run.sum()
                total = part if total is None else total + part
            sums.append(torch.zeros((), device=self._device) if total is None else total)
        return sums


class NgnStep:
    """The fused NGN update of these tensors, prepared once; see :func:`ngn_update_triton`.

    Calling it with the gradients and ``gamma`` (a 0-dim device tensor) takes the step. With
    ``taken=γ0`` it instead moves a step already taken with γ0 to ``gamma``: its programs
    return at once when the two are equal. With ``sq_norm=True`` the launch also sums
    ``‖g‖²`` of the gradients it reads and returns it (0-dim fp32).
    """

    def __init__(self, params, grads, momentum_buffers, *, chunk: int = CHUNK):
        self._has_momentum = momentum_buffers is not None
        if self._has_momentum:
            _check_layout(params, momentum_buffers)
        else:
            _check_layout(params)
        buffers = momentum_buffers if self._has_momentum else params  # never read without
        self._launches = _launches("ngn", chunk, [params, grads, buffers])
        self._partials = [
            torch.empty(max(x.table.total, 1), dtype=torch.float32, device=x.device)
            for x in self._launches
        ]
        self._fresh = {x.device: torch.full((), -1.0, device=x.device) for x in self._launches}

    def set_grads(self, grads: list[Tensor]) -> None:
        for launch in self._launches:
            launch.set_grads(grads)

    def __call__(
        self,
        grads: list[Tensor],
        gamma: Tensor,
        weight_decay: float,
        momentum: float,
        *,
        taken: Tensor | None = None,
        sq_norm: bool = False,
    ) -> Tensor | None:
        total = None
        for launch, partials in zip(self._launches, self._partials, strict=True):
            if not launch.table.total:
                continue
            device = launch.device
            _ngn_kernel[(launch.table.total,)](
                *launch.rows(grads), gamma.to(device=device, dtype=torch.float32),
                self._fresh[device] if taken is None else taken.to(device, torch.float32),
                partials, float(weight_decay), float(momentum), 1.0 - momentum,
                launch.pointer_type, HAS_MOMENTUM=self._has_momentum, SQ_NORM=sq_norm,
                **launch.options(),
            )  # fmt: skip
            LAUNCHES["ngn"] += 1
            if sq_norm:
                part = partials[: launch.table.total].sum()
                total = part if total is None else total + part
        if sq_norm and total is None:
            total = torch.zeros((), device=gamma.device)
        return total


def adamw_step_triton(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    steps: list[Tensor],
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    *,
    chunk: int = CHUNK,
) -> None:
    """One fused AdamW step; see :func:`kernels.optim.reference.adamw_step_ref`.

    Parameters are float32, bfloat16 or float16 (gradients in the same dtype), state
    fp32. One launch per (device, dtype), which also increments the step counts.
    """
    if params:
        AdamWStep(params, grads, exp_avgs, exp_avg_sqs, steps, chunk=chunk)(
            grads, lr, beta1, beta2, eps, weight_decay
        )


def grad_sq_norms_triton(grad_lists: list[list[Tensor]], *, chunk: int = CHUNK) -> list[Tensor]:
    """``‖g‖²`` of each list (0-dim fp32); see :class:`SqNormStep`."""
    return SqNormStep(grad_lists, chunk=chunk)(grad_lists)


def ngn_update_triton(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor] | None,
    gamma: Tensor,
    weight_decay: float,
    momentum: float,
    *,
    chunk: int = CHUNK,
) -> None:
    """The fused NGN update; see :func:`kernels.optim.reference.ngn_update_ref`."""
    if params:
        buffers = momentum_buffers if momentum != 0 else None
        NgnStep(params, grads, buffers, chunk=chunk)(grads, gamma, weight_decay, momentum)


def ngn_step_triton(
    params: list[Tensor],
    grads: list[Tensor],
    loss: Tensor,
    sigma: float,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    momentum_buffers: list[Tensor] | None = None,
) -> Tensor:
    """One fused NGN step on one group; see :func:`kernels.optim.reference.ngn_step_ref`."""
    (sq_norm,) = grad_sq_norms_triton([grads])
    gamma = sigma * ngn_scale(loss.to(sq_norm.device), sigma * sq_norm)
    ngn_update_triton(params, grads, momentum_buffers, gamma, weight_decay, momentum)
    return gamma
