"""The ``lra/pathfinder`` and ``lra/pathx`` tasks: cached generated data, the release at
the full budget, Table 9's settings, and runs through the one runner loop."""

from __future__ import annotations

import dataclasses
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from suites.api import Budget, Task
from suites.executors import execute
from suites.lra import pathfinder as tasks_module
from suites.lra.data import pathfinder
from suites.lra.data.release import CACHE_ENV_VAR, ROOT_ENV_VAR, cache_dir
from suites.lra.model import LRUConfig
from suites.lra.problem import warmup_cosine
from suites.lra.task import FULL_WEIGHT_DECAY, Scale
from suites.registry import builtin_optimizer_paths
from suites.submission import load_submission

TINY = pathfinder.PathfinderSettings(resolution=16, contour_length=3, distractors=0)


@pytest.fixture(autouse=True)
def isolated_data(monkeypatch, tmp_path):
    """Generated data go to the test's directory; no release root unless a test sets one."""
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.setenv(ROOT_ENV_VAR, str(tmp_path / "lra"))


@pytest.fixture(scope="module")
def adamw():
    return load_submission(builtin_optimizer_paths()["adamw"])


def by_name(name: str) -> tasks_module.PathfinderTask:
    return next(t for t in tasks_module.pathfinder_tasks() if t.name == name)


def test_factory_gives_both_tasks_in_the_contract():
    tasks = tasks_module.pathfinder_tasks()
    assert [t.name for t in tasks] == ["lra/pathfinder", "lra/pathx"]
    for task in tasks:
        assert isinstance(task, Task) and task.suite == "lra"
        assert task.metric.name == "test_accuracy" and task.metric.higher_is_better
        assert task.metric.select_by == "val_accuracy"
        assert task.budgets.smoke < task.budgets.quick < task.budgets.full
        assert "§5.3" in task.description and "chance" in task.description
        assert task.missing_data("smoke") is None and task.missing_data("quick") is None


def test_full_scales_are_table_9():
    """Table 9: PathFinder 6/192/256, 500k steps, batch 64; PathX 6/128/256, 250k, 32;
    both LR factor 0.25, dropout 0, bidirectional; Path-X phases in [0, π/10]."""
    expected = {
        "lra/pathfinder": (192, 500_000, 64, 2 * math.pi, 32),
        "lra/pathx": (128, 250_000, 32, math.pi / 10, 128),
    }
    for name, (width, steps, batch, max_phase, resolution) in expected.items():
        task = by_name(name)
        full = task.scales["full"]
        assert full.config == LRUConfig(d_model=width, d_state=256, depth=6, dropout=0.0,
                                         bidirectional=True, max_phase=max_phase)
        assert (task.budgets.full, full.batch_size, task.lr_factor) == (steps, batch, 0.25)
        assert full.paper and task.resolution == resolution
        assert all(task.scales[b].config.bidirectional for b in ("smoke", "quick"))


def test_generated_images_are_drawn_once_then_read_from_the_cache(monkeypatch):
    task = by_name("lra/pathfinder")
    calls = []
    original = pathfinder.generate

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(pathfinder, "generate", counting)
    first = task.splits("smoke")
    written = {p: p.stat().st_mtime_ns for p in (cache_dir() / "pathfinder").glob("*.npz")}
    second = task.splits("smoke")
    assert len(calls) == 3 and len(written) == 3  # one draw per split, then none
    assert {p: p.stat().st_mtime_ns for p in written} == written
    scale = task.scales["smoke"]
    for split, size in [("train", scale.train_size), ("val", scale.eval_size),
                        ("test", scale.eval_size)]:
        a, b = getattr(first, split), getattr(second, split)
        assert a.inputs.shape == (size, 256, 1) and a.lengths is None
        torch.testing.assert_close(a.inputs, b.inputs, rtol=0, atol=0)
        assert torch.equal(a.labels, b.labels)
        # Each split is its own draw, with as many connected as unconnected images.
        assert int(a.labels.sum()) == size // 2
        path = pathfinder.cache_path(size, task.generated, tasks_module.GENERATED_DATA_SEEDS[split])
        with np.load(path) as stored:
            np.testing.assert_array_equal(a.labels.numpy(), stored["labels"])
            np.testing.assert_allclose(a.batch(torch.tensor([0]))[0].numpy().reshape(16, 16),
                                       stored["images"][0] / 255.0, rtol=0, atol=1e-7)


def test_concurrent_writers_leave_one_complete_file():
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: pathfinder.cached_generate(12, TINY, seed=3), range(4)))
    images, labels = pathfinder.generate(12, TINY, seed=3)
    for got_images, got_labels in results:
        np.testing.assert_array_equal(got_images, images)
        np.testing.assert_array_equal(got_labels, labels)
    files = sorted(p.name for p in (cache_dir() / "pathfinder").iterdir())
    assert files == [pathfinder.cache_path(12, TINY, 3).name]


def test_a_failed_write_leaves_no_file(monkeypatch):
    def half_written(file, **arrays):
        file.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", half_written)
    images, labels = pathfinder.cached_generate(4, TINY, seed=0)  # kept in memory
    expected = pathfinder.generate(4, TINY, seed=0)
    np.testing.assert_array_equal(images, expected[0])
    np.testing.assert_array_equal(labels, expected[1])
    assert list((cache_dir() / "pathfinder").iterdir()) == []


def test_an_unreadable_cache_file_is_drawn_again():
    path = pathfinder.cache_path(4, TINY, 0)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz file")
    images, labels = pathfinder.cached_generate(4, TINY, seed=0)
    np.testing.assert_array_equal(images, pathfinder.generate(4, TINY, seed=0)[0])
    with np.load(path) as stored:
        np.testing.assert_array_equal(stored["labels"], labels)


def test_cache_key_tells_settings_seeds_and_counts_apart():
    keys = {pathfinder.cache_path(8, TINY, 0), pathfinder.cache_path(8, TINY, 1),
            pathfinder.cache_path(9, TINY, 0), pathfinder.cache_path(8, TINY.magnified(32), 0),
            pathfinder.cache_path(8, dataclasses.replace(TINY, distractors=1), 0)}
    assert len(keys) == 5


@pytest.mark.parametrize(
    ("name", "relative", "command"),
    [("lra/pathfinder", "pathfinder32/curv_contour_length_14", "pathfinder --root"),
     ("lra/pathx", "pathfinder128/curv_contour_length_14", "pathfinder --resolution 128 --root")],
)
def test_full_budget_says_which_release_files_are_missing(tmp_path, name, relative, command):
    task = dataclasses.replace(by_name(name), data_root=tmp_path)
    message = task.missing_data("full")
    for prefix in ("", "lra_release/", "lra_release/lra_release/"):
        assert str(tmp_path / prefix / relative / "metadata") in message
    assert f"python -m suites.lra.data {command} {tmp_path}" in message


def test_full_budget_reads_the_release_with_table_9_training(tmp_path, adamw, one_thread):
    pathfinder.write_release(tmp_path / "lra_release", 20, batch_size=10, seed=1)
    tiny_full = Scale(LRUConfig(d_model=8, d_state=8, depth=1, bidirectional=True), 4, 0,
                      paper=True)
    task = dataclasses.replace(
        by_name("lra/pathfinder"), data_root=tmp_path, budgets=Budget(smoke=1, quick=1, full=20),
        scales={**by_name("lra/pathfinder").scales, "full": tiny_full},
    )
    assert task.missing_data("full") is None
    problem = task.setup(seed=0, budget="full")
    groups = {g["name"]: g for g in problem.param_groups}
    assert groups["other"]["weight_decay"] == FULL_WEIGHT_DECAY
    assert groups["recurrent"]["lr_scale"] == 0.25 and groups["recurrent"]["weight_decay"] == 0
    # 10% warm-up (2 of 20 steps), then cosine.
    schedule = [problem.lr_schedule(k) for k in range(20)]
    assert schedule == [warmup_cosine(20)(k) for k in range(20)] and schedule[0] < schedule[1]
    result = execute(task, adamw, {"lr": 1e-3, "eps": 1e-8}, seed=0, budget="full")
    assert result.status == "ok", result.error
    assert result.steps_run == 20 and set(result.metrics) >= {"val_accuracy", "test_accuracy"}


@pytest.mark.parametrize("name", ["lra/pathfinder", "lra/pathx"])
def test_smoke_run_through_the_runner(name, adamw, one_thread):
    task = by_name(name)
    result = execute(task, adamw, {"lr": 3e-3, "eps": 1e-8}, seed=0, budget="smoke")
    assert result.status == "ok", result.error
    assert result.steps_run == task.budgets.smoke
    assert 0 <= result.metrics["test_accuracy"] <= 1
    assert 0 <= result.metrics["val_accuracy"] <= 1
