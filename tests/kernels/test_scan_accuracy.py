"""Long sequences: the Triton scan is as accurate as a sequential fp32 loop.

With a constant lam and |lam| -> 1 nothing decays, so any rounding that repeats in every
tile (an fp32 tile product lam**32 used for each of T/32 tiles) adds up coherently. The
goal: the error of h and of every gradient at most 1.5x that of the plain fp32
sequential loop, both measured against a complex128 oracle on the same fp32 inputs, for
|lam| = 0.9999 and |lam| = 1, in both schedules.

The interpreter is slow, so the fast test runs T = 512 (where the fp32 tile product
already gave up to 3.3x the loop's error) and the slow one T = 4096; the README gives
the figures at T = 65536 (``python -m bench.scan_accuracy --T 65536``).
"""

import pytest
from test_scan import TRITON_DEVICE, _vectorized_interpreter_scans  # noqa: F401

from bench.scan_accuracy import GOAL, MODULI, relative_errors


def assert_within_goal(T, chunk):
    errors = relative_errors(T, chunk=chunk, device=str(TRITON_DEVICE))
    loop, fused = errors["sequential fp32"], errors["triton"]
    for quantity in loop:
        for modulus in MODULI:
            ratio = fused[quantity][modulus] / loop[quantity][modulus]
            assert ratio <= GOAL, (
                f"{quantity} at |lam| = {modulus}: {fused[quantity][modulus]:.2e} against "
                f"the loop's {loop[quantity][modulus]:.2e} ({ratio:.2f}x > {GOAL}x)")


@pytest.mark.parametrize("schedule", ["single_pass", "lookback"])
def test_long_scan_as_accurate_as_the_sequential_loop(schedule):
    T = 512
    assert_within_goal(T, chunk=T if schedule == "single_pass" else 32)


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["single_pass", "lookback"])
def test_longer_scan_as_accurate_as_the_sequential_loop(schedule):
    T = 4096
    assert_within_goal(T, chunk=T if schedule == "single_pass" else 32)


@pytest.mark.gpu
@pytest.mark.parametrize("chunk", [None, 32], ids=["default", "lookback"])
def test_long_scan_accuracy_on_gpu(chunk):
    errors = relative_errors(1 << 16, chunk=chunk, device="cuda")
    loop, fused = errors["sequential fp32"], errors["triton"]
    for quantity in loop:
        for modulus in MODULI:
            assert fused[quantity][modulus] <= GOAL * loop[quantity][modulus], (quantity, modulus)


def test_relative_errors_groups_channels_by_modulus():
    errors = relative_errors(64, chunk=16, backends=("chunked",))
    assert set(errors) == {"sequential fp32", "chunked"}
    assert set(errors["chunked"]) == {"h", "grad_lam", "grad_b", "grad_h0"}
    assert all(set(row) == set(MODULI) for row in errors["chunked"].values())
    assert all(0 < e < 1e-5 for row in errors["chunked"].values() for e in row.values())
