"""The machine a measurement ran on: its device, a readable name and a file-name label."""

from __future__ import annotations

import os
import platform

import torch


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a timer reads its end."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    """``NVIDIA H200``, or ``CPU x86_64 (2 threads)``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()} ({os.cpu_count()} threads)"


def machine_label(device: torch.device | None = None) -> str:
    """A file-name-safe label of the machine (``h200``, ``cpu-2c``)."""
    device = device or default_device()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device).lower().replace("nvidia", "")
        return "-".join("".join(c if c.isalnum() else " " for c in name).split())
    return f"cpu-{os.cpu_count()}c"
