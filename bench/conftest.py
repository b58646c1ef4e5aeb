"""pytest-benchmark harness set-up: the device, and the gpu marker's clean skip."""

import pytest
import torch

import cases


@pytest.fixture(scope="session")
def device() -> torch.device:
    return cases.default_device()
