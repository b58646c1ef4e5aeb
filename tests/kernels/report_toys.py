"""Toy Triton kernels whose traffic is known exactly, for the static report's tests."""

import triton
import triton.language as tl


@triton.jit
def read_twice_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    # y = x + x with two loads of x: a meter must count x twice.
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    a = tl.load(x_ptr + offs, mask=mask)
    b = tl.load(x_ptr + offs, mask=mask)
    tl.store(y_ptr + offs, a + b, mask=mask)


@triton.jit
def count_kernel(counter_ptr):
    tl.atomic_add(counter_ptr, 1)


@triton.jit
def copy_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    # Unmasked body: with 16-byte aligned pointers and n a multiple of BLOCK the compiler
    # may use 128-bit accesses.
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + offs, tl.load(x_ptr + offs))


@triton.jit
def strided_copy_kernel(x_ptr, y_ptr, n, stride, BLOCK: tl.constexpr):
    # y = x[::stride]: each element read from a sector of its own when stride >= 8.
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs * stride, mask=mask), mask=mask)


@triton.jit
def running_max_kernel(x_ptr, y_ptr, ROWS: tl.constexpr, COLS: tl.constexpr):
    # A scan with a custom combine function, down the rows.
    offs = tl.arange(0, ROWS)[:, None] * COLS + tl.arange(0, COLS)[None, :]
    tl.store(y_ptr + offs, tl.associative_scan(tl.load(x_ptr + offs), 0, _larger))


@triton.jit
def _larger(a, b):
    return tl.maximum(a, b)
