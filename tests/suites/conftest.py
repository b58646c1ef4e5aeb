"""Fixtures of the suite tests: submission files, a registry of fake tasks, one thread."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from engine_fakes import GD_SOURCE, FailingTask, QuadraticTask

from suites import registry


@pytest.fixture
def write_submission(tmp_path):
    """Write a submission file into the test's directory; returns its path."""

    def write(source: str, filename: str = "submission.py") -> Path:
        path = tmp_path / filename
        path.write_text(textwrap.dedent(source).lstrip())
        return path

    return write


@pytest.fixture
def fake_registry(monkeypatch, write_submission):
    """The registry holds the fake suite and one built-in optimizer, ``gd``.

    Returns the list of tasks, which a test may change.
    """
    tasks = [QuadraticTask(), QuadraticTask(name="fake/quadratic-2"), FailingTask()]
    gd = write_submission(GD_SOURCE, "gd.py")
    monkeypatch.setattr(registry, "all_tasks", lambda: tasks)
    monkeypatch.setattr(registry, "available_suites", lambda: ["fake"])
    monkeypatch.setattr(registry, "builtin_optimizer_paths", lambda: {"gd": gd})
    return tasks


@pytest.fixture
def one_thread():
    """Small LRUs train fastest on one thread, above all on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
