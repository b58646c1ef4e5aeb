"""Marks the kernel tests share."""

import os

import pytest

# The traffic meter counts what the Triton interpreter executes; bench/gpu.sh runs the
# kernel tests on CUDA, without it, where these tests do not apply.
needs_interpreter = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") != "1",
    reason="the traffic meter counts bytes under the Triton interpreter",
)
