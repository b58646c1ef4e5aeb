"""pytest-benchmark harness set-up: the device every case runs on."""

import cases
import pytest
import torch


@pytest.fixture(scope="session")
def device() -> torch.device:
    return cases.default_device()
