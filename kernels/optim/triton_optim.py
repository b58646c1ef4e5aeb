"""Fused AdamW and NGN steps in Triton; same signatures as ``kernels.optim.reference``.

Multi-tensor strategy: a pointer table. Each launch gets one int64 table (one copy to
the device) holding, per tensor, the addresses of its parameter, gradient and state
and its length, and per program a (tensor, start) pair: program ``c`` updates elements
``[start, start + CHUNK)`` of one tensor. One launch covers every tensor of a group
with one dtype, so 1,000 small tensors cost one launch instead of 1,000, and nothing
is copied: packing into a flat buffer would add a gather and a scatter pass, and making
parameters views of one flat allocation breaks models that move or re-create them.
Tensors need only be dense, with the state laid out like the parameter.

The price is host time to read the addresses each step (gradients may be re-allocated
between steps), measured with ``python -m kernels.optim.compare`` on a shared 2-core
CPU machine: 0.06–0.16 ms of CPU time for one tensor and 1.2–3.3 ms for 1,000 (five
addresses per tensor; the range is across runs). A launch per tensor would instead
cost 1,000 Triton launches, each several µs of host time plus the GPU's launch latency.

Step counts, bias corrections, the NGN loss and γ stay on the device: no host syncs.

Access widths: a program's range splits into whole blocks, loaded and stored without a
mask, and a masked tail (only a tensor's last program has one). When every address of
a launch is 16-byte aligned (checked on the host; views at an element offset are not)
the kernels are told so (``ALIGNED``), and each thread moves 16 bytes of an operand in
one 128-bit access; otherwise they run the same code with 32-bit accesses.
``python -m kernels.report`` shows the widths, registers and occupancy on sm_90/sm_80.

The bytes a step must move per parameter are modelled in ``kernels.optim.traffic``.
"""

import collections

import numpy as np
import torch
import triton
import triton.language as tl
from torch import Tensor

from kernels.optim.layout import is_dense, like
from kernels.optim.reference import log_beta, ngn_scale

# Elements per program: several blocks amortise the table reads and the bias
# corrections, and 16M parameters still give 2,048 programs to spread over the SMs.
CHUNK = 1 << 13
NUM_WARPS = 8

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
def _adamw_kernel(
    p_ptrs, g_ptrs, m_ptrs, v_ptrs, step_ptrs, numels, chunk_tensor, chunk_start,
    lr, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, decay, log_beta1, log_beta2,
    p_ref, CHUNK: tl.constexpr, BLOCK: tl.constexpr, ALIGNED: tl.constexpr,
):  # fmt: skip
    # p_ref: one of the parameters, passed only for its pointer type.
    t, start, body_end, end = _program_range(numels, chunk_tensor, chunk_start, CHUNK, BLOCK)
    p_ptr = _address(p_ptrs, t, p_ref.dtype, ALIGNED)
    g_ptr = _address(g_ptrs, t, p_ref.dtype, ALIGNED)
    m_ptr = _address(m_ptrs, t, tl.pointer_type(tl.float32), ALIGNED)
    v_ptr = _address(v_ptrs, t, tl.pointer_type(tl.float32), ALIGNED)
    step = tl.load(tl.load(step_ptrs + t).to(tl.pointer_type(tl.float32))).to(tl.float64)
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
    p_ptr, g_ptr, buf_ptr, offs, mask, gamma, decay, momentum, one_minus_momentum,
    HAS_MOMENTUM: tl.constexpr,
):  # fmt: skip
    p = tl.load(p_ptr + offs, mask=mask).to(tl.float32)
    g = tl.load(g_ptr + offs, mask=mask).to(tl.float32)
    if HAS_MOMENTUM:
        buf = tl.load(buf_ptr + offs, mask=mask)
        buf = buf * momentum + (one_minus_momentum * gamma) * g
        tl.store(buf_ptr + offs, buf, mask=mask)
        p = p * decay - buf
    else:
        p = p * decay - gamma * g
    tl.store(p_ptr + offs, p.to(p_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _ngn_kernel(
    p_ptrs, g_ptrs, buf_ptrs, numels, chunk_tensor, chunk_start, gamma_ptr,
    weight_decay, momentum, one_minus_momentum,
    p_ref, HAS_MOMENTUM: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr,
    ALIGNED: tl.constexpr,
):  # fmt: skip
    t, start, body_end, end = _program_range(numels, chunk_tensor, chunk_start, CHUNK, BLOCK)
    p_ptr = _address(p_ptrs, t, p_ref.dtype, ALIGNED)
    g_ptr = _address(g_ptrs, t, p_ref.dtype, ALIGNED)
    buf_ptr = _address(buf_ptrs, t, tl.pointer_type(tl.float32), ALIGNED)
    gamma = tl.load(gamma_ptr)
    decay = 1.0 - gamma * weight_decay
    for off in range(start, body_end, BLOCK):
        _ngn_block(
            p_ptr, g_ptr, buf_ptr, off + tl.arange(0, BLOCK), None, gamma, decay,
            momentum, one_minus_momentum, HAS_MOMENTUM,
        )  # fmt: skip
    if body_end < end:
        offs = body_end + tl.arange(0, BLOCK)
        _ngn_block(
            p_ptr, g_ptr, buf_ptr, offs, offs < end, gamma, decay, momentum,
            one_minus_momentum, HAS_MOMENTUM,
        )  # fmt: skip


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
    """The launch table on ``device``: one address column per tensor list (``columns``,
    walked element by element, then ``scalars``, read once), the lengths (of
    ``columns[0]``), then each program's tensor index and start element. Returns the
    column views, the number of programs of each tensor and whether every address in
    ``columns`` is 16-byte aligned (the kernels' ``ALIGNED``).

    Built with numpy, since its host time is the fused step's per-tensor cost."""
    n = len(columns[0])
    numels = np.fromiter(map(Tensor.numel, columns[0]), np.int64, n)
    programs = -(-numels // chunk)
    chunk_tensor = np.repeat(np.arange(n, dtype=np.int64), programs)
    first_program = np.cumsum(programs) - programs
    chunk_start = (np.arange(len(chunk_tensor)) - first_program[chunk_tensor]) * chunk
    addresses = [np.fromiter(map(Tensor.data_ptr, col), np.int64, n) for col in columns]
    aligned = all(not (a % 16).any() for a in addresses)
    addresses += [np.fromiter(map(Tensor.data_ptr, col), np.int64, n) for col in scalars]
    rows = [*addresses, numels, chunk_tensor, chunk_start]
    table = torch.from_numpy(np.concatenate(rows))
    if device.type == "cuda":
        table = table.pin_memory().to(device, non_blocking=True)
    return list(table.split([len(r) for r in rows])), programs, aligned


def _launch_options(kernel: str, dtype: torch.dtype, chunk: int, aligned: bool) -> dict:
    block = block_size(kernel, dtype)
    if chunk % block:
        raise ValueError(f"chunk must be a multiple of {kernel}'s block of {block}, got {chunk}")
    return dict(CHUNK=chunk, BLOCK=block, ALIGNED=aligned, num_warps=NUM_WARPS)


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
    fp32. One launch per (device, dtype), plus one ``_foreach_add_`` for the steps.
    """
    if not params:
        return
    _check_layout(params, exp_avgs, exp_avg_sqs)
    torch._foreach_add_(steps, 1)
    for (device, dtype), index in _partitions(params).items():
        ps = [params[i] for i in index]
        gs = [like(grads[i], params[i]) for i in index]
        columns = [ps, gs, [exp_avgs[i] for i in index], [exp_avg_sqs[i] for i in index]]
        table, programs, aligned = _table(columns, device, chunk, ([steps[i] for i in index],))
        if programs.sum() == 0:
            continue
        _adamw_kernel[(int(programs.sum()),)](
            *table,
            float(lr), float(beta1), 1.0 - beta1, float(beta2), 1.0 - beta2, float(eps),
            1.0 - lr * weight_decay, log_beta(beta1), log_beta(beta2),
            ps[0], **_launch_options("adamw", dtype, chunk, aligned),
        )  # fmt: skip
        LAUNCHES["adamw"] += 1


def grad_sq_norms_triton(grad_lists: list[list[Tensor]], *, chunk: int = CHUNK) -> list[Tensor]:
    """``‖g‖²`` of each list (0-dim fp32): one reduction launch per (device, dtype) over
    all lists, writing one partial sum per program; no atomics, so it is deterministic."""
    flat = [(j, g) for j, grads in enumerate(grad_lists) for g in grads]
    sums: list[Tensor | None] = [None] * len(grad_lists)
    for (device, dtype), index in _partitions([g for _, g in flat]).items():
        gs = [flat[i][1] for i in index]
        table, programs, aligned = _table([gs], device, chunk)
        total = int(programs.sum())
        partials = torch.zeros(max(total, 1), dtype=torch.float32, device=device)
        if total:
            _sq_norm_kernel[(total,)](
                *table, partials, gs[0],
                **_launch_options("sq_norm", dtype, chunk, aligned),
            )  # fmt: skip
            LAUNCHES["sq_norm"] += 1
        # Programs follow tensor order and lists are contiguous in it, so each list's
        # partial sums are one run of ``partials``.
        programs_per_list: collections.Counter = collections.Counter()
        for i, count in zip(index, programs.tolist(), strict=True):
            programs_per_list[flat[i][0]] += count
        begin = 0
        for j, count in programs_per_list.items():
            part = partials[begin : begin + count].sum()
            sums[j] = part if sums[j] is None else sums[j] + part
            begin += count
    device = next((g.device for _, g in flat), torch.device("cpu"))
    return [torch.zeros((), device=device) if s is None else s for s in sums]


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
    if not params:
        return
    has_momentum = momentum != 0
    if has_momentum:
        _check_layout(params, momentum_buffers)
    else:
        _check_layout(params)
    for (device, dtype), index in _partitions(params).items():
        ps = [params[i] for i in index]
        gs = [like(grads[i], params[i]) for i in index]
        bufs = [momentum_buffers[i] for i in index] if has_momentum else ps
        table, programs, aligned = _table([ps, gs, bufs], device, chunk)
        if programs.sum() == 0:
            continue
        _ngn_kernel[(int(programs.sum()),)](
            *table, gamma.to(device=device, dtype=torch.float32),
            float(weight_decay), float(momentum), 1.0 - momentum,
            ps[0], HAS_MOMENTUM=has_momentum,
            **_launch_options("ngn", dtype, chunk, aligned),
        )  # fmt: skip
        LAUNCHES["ngn"] += 1


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
