"""pytest-benchmark harness set-up: the device every case runs on, and the machine's
label and device in the JSON's ``machine_info`` (beside pytest-benchmark's own
``commit_info``), so that a file says where and at which commit it was measured."""

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


def pytest_benchmark_update_machine_info(config, machine_info):
    from kernels.machine import device_name, machine_label

    machine_info["label"] = machine_label()
    machine_info["device"] = device_name(cases.default_device())
