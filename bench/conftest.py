"""pytest-benchmark harness set-up: the device every case runs on."""

import pytest
import torch

from bench import cases, timing


@pytest.fixture(scope="session")
def device():
    """The device, with CPU timings single-threaded for the session (then restored)."""
    device = cases.default_device()
    threads = torch.get_num_threads()
    timing.set_cpu_threads(device)
    yield device
    torch.set_num_threads(threads)
