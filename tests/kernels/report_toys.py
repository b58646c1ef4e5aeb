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
