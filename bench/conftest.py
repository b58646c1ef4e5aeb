"""pytest-benchmark harness set-up: the device every case runs on."""

import pytest
import torch

from bench import cases


@pytest.fixture(scope="session")
def device() -> torch.device:
    return cases.default_device()
