"""The ``lra`` suite's tasks, trained through the one runner loop."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import suites.lra
from suites.api import Budget, Task
from suites.executors import execute
from suites.lra.data import listops as listops_data
from suites.lra.listops import LR_FACTOR, SCALES, SHORT_SETTINGS, short_splits
from suites.registry import builtin_optimizer_paths, get_task
from suites.submission import load_submission


@pytest.fixture(scope="module")
def adamw():
    return load_submission(builtin_optimizer_paths()["adamw"])


def test_suite_exposes_the_lra_tasks():
    tasks = suites.lra.tasks()
    assert [t.name for t in tasks][:4] == ["lra/listops", "lra/text", "lra/retrieval", "lra/image"]
    for task in tasks:
        assert isinstance(task, Task) and task.suite == "lra"
        assert task.metric.higher_is_better and "§5.3" in task.description
        assert task.budgets.smoke < task.budgets.quick < task.budgets.full


def test_listops_problem_groups_and_batches():
    problem = get_task("lra/listops").setup(seed=0, budget="smoke")
    recurrent, other = problem.param_groups
    assert recurrent["lr_scale"] == LR_FACTOR and recurrent["weight_decay"] == 0.0
    assert "lr_scale" not in other
    loss = problem.loss(0)
    assert loss.shape == () and loss.requires_grad
    # Fixed batches: the same step gives the same loss for a given model.
    torch.testing.assert_close(problem.loss(3), problem.loss(3))
    metrics = problem.evaluate()
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["test_loss"] > 0
    assert 0 <= metrics["val_accuracy"] <= 1 and metrics["val_loss"] > 0
    assert problem.lr_schedule(0) == pytest.approx(0.5)  # warm-up + cosine at every budget


def test_full_budget_uses_table_9_and_the_schedule(tmp_path):
    listops_data.write_release(tmp_path, {"train": 8, "val": 4, "test": 4}, **SHORT_SETTINGS)
    task = dataclasses.replace(get_task("lra/listops"), data_root=tmp_path)
    assert task.missing_data("full") is None
    scale = SCALES["full"]
    assert (scale.config.depth, scale.config.d_model, scale.config.d_state) == (6, 128, 256)
    assert scale.batch_size == 32 and task.budgets.full == 80_000 and scale.paper
    problem = task.setup(seed=0, budget="full")
    assert problem.param_groups[1]["weight_decay"] == 0.05
    assert problem.lr_schedule(0) == pytest.approx(1 / 8_000)
    assert problem.lr_schedule(8_000) == pytest.approx(1.0)


def test_short_data_is_the_generator_s_with_a_fixed_seed():
    train, test, val = short_splits()
    assert len(train) == 5_000 and len(test) == 1_000 and len(val) == 1_000
    assert 20 < int(train.lengths.min()) and int(train.lengths.max()) < 80
    assert train.inputs.max() < len(listops_data.VOCAB)


def test_full_budget_reads_the_release_and_says_what_is_missing(tmp_path):
    task = dataclasses.replace(get_task("lra/listops"), data_root=tmp_path)
    with pytest.raises(FileNotFoundError, match="python -m suites.lra.data listops"):
        task.setup(seed=0, budget="full")
    message = task.missing_data("full")
    assert "python -m suites.lra.data listops" in message and "basic_train.tsv" in message
    assert task.missing_data("quick") is None


def test_smoke_run_through_the_runner(adamw, one_thread):
    result = execute(get_task("lra/listops"), adamw, {"lr": 3e-3, "eps": 1e-8}, 0, "smoke")
    assert result.status == "ok", result.error
    assert result.steps_run == get_task("lra/listops").budgets.smoke
    assert 0 <= result.metrics["test_accuracy"] <= 1


def test_lru_beats_the_majority_class_with_adamw(adamw, one_thread):
    """300 AdamW steps of the smoke-scale LRU (1 block, H = N = 32): far above the majority."""
    task = dataclasses.replace(get_task("lra/listops"), budgets=Budget(smoke=300, quick=1, full=1))
    result = execute(task, adamw, {"lr": 1e-2, "eps": 1e-8}, seed=0, budget="smoke")
    assert result.status == "ok", result.error
    test = short_splits()[1].head(SCALES["smoke"].eval_size)
    majority = torch.bincount(test.labels).max().item() / len(test)
    assert majority < 0.2
    assert result.metrics["test_accuracy"] > majority + 0.1, result.metrics


def test_warmup_cosine_follows_app_e3():
    from suites.lra.problem import warmup_cosine

    schedule = warmup_cosine(100, warmup_fraction=0.1)
    values = [schedule(k) for k in range(100)]
    assert values[:10] == pytest.approx([(k + 1) / 10 for k in range(10)])
    assert values[10] == pytest.approx(1.0)
    assert values[55] == pytest.approx(0.5)  # half-way through the decay
    assert values[99] == pytest.approx(0.5 * (1 + math.cos(math.pi * 89 / 90)))
    assert all(a >= b for a, b in zip(values[10:-1], values[11:], strict=True))
    assert warmup_cosine(5, 0.0)(0) == 1.0
    with pytest.raises(ValueError, match="warmup_fraction"):
        warmup_cosine(10, 1.0)


def test_chance_is_the_majority_class_of_the_test_split():
    listops = get_task("lra/listops").chance("quick")
    labels = short_splits()[1].labels
    assert listops.examples == len(labels) == 1_000
    assert listops.score == pytest.approx(int(torch.bincount(labels).max()) / 1_000)
    assert 0.1 < listops.score < 0.2  # ten classes, not balanced
    assert listops.ceiling == pytest.approx(
        listops.score + 3 * math.sqrt(listops.score * (1 - listops.score) / 1_000))
    pathfinder = get_task("lra/pathfinder").chance("quick")
    assert (pathfinder.score, pathfinder.examples) == (0.5, 1_000)  # balanced classes
    assert pathfinder.ceiling == pytest.approx(0.5 + 3 * 0.5 / math.sqrt(1_000))


def test_chance_is_unknown_without_the_data(tmp_path):
    text = dataclasses.replace(get_task("lra/text"), data_root=tmp_path)
    assert text.chance("quick") is None
    assert get_task("chain/depth-4-const").chance("quick") is None
