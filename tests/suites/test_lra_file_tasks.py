"""``lra/text``, ``lra/retrieval`` and ``lra/image``: tasks that need the release's files."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_lra_loaders import ROWS, write_cifar, write_imdb, write_retrieval

from suites.executors import execute
from suites.lra.files import IMAGE_SCALES, RETRIEVAL_SCALES, TEXT_SCALES
from suites.registry import builtin_optimizer_paths, get_task
from suites.submission import load_submission

FILE_TASKS = ("lra/text", "lra/retrieval", "lra/image")


def write_release(name, root):
    if name == "lra/text":
        write_imdb(root)
    elif name == "lra/retrieval":
        write_retrieval(root / "tsv_data", ROWS * 3)
    else:
        write_cifar(root / "cifar-10-batches-py")


@pytest.mark.parametrize("name", FILE_TASKS)
def test_every_budget_needs_the_files_and_says_which(tmp_path, name):
    task = dataclasses.replace(get_task(name), data_root=tmp_path)
    for budget in ("smoke", "quick", "full"):
        message = task.missing_data(budget)
        assert message is not None and str(tmp_path) in message
        assert {"lra/text": "aclImdb_v1.tar.gz", "lra/retrieval": "lra_release.gz",
                "lra/image": "cifar-10-python.tar.gz"}[name] in message
    with pytest.raises(FileNotFoundError):
        task.setup(0, "smoke")
    write_release(name, tmp_path)
    assert all(task.missing_data(b) is None for b in ("smoke", "quick", "full"))


@pytest.mark.parametrize("name", FILE_TASKS)
def test_smoke_run_on_fixture_files(tmp_path, name, one_thread):
    write_release(name, tmp_path)
    task = dataclasses.replace(get_task(name), data_root=tmp_path)
    adamw = load_submission(builtin_optimizer_paths()["adamw"])
    result = execute(task, adamw, {"lr": 3e-3, "eps": 1e-8}, 0, "smoke")
    assert result.status == "ok", result.error
    assert result.steps_run == task.budgets.smoke
    for key in ("test_accuracy", "val_accuracy"):
        assert 0 <= result.metrics[key] <= 1
    assert result.score == result.metrics["test_accuracy"]
    chance = task.chance("smoke")  # recorded by the driver, from the test split's labels
    assert (result.metric.chance, result.metric.chance_ceiling) == (chance.score, chance.ceiling)


def test_text_validation_is_held_out_of_training(tmp_path):
    write_imdb(tmp_path)
    task = dataclasses.replace(get_task("lra/text"), data_root=tmp_path)
    data = task.splits("smoke")
    rows = {tuple(r.tolist()) for r in data.train.inputs}
    assert len(data.train) + len(data.val) == 3 and len(data.val) == 1
    assert not rows & {tuple(r.tolist()) for r in data.val.inputs}
    assert data.train.inputs.shape[1] <= TEXT_SCALES["smoke"].max_length


def test_full_scales_are_table_9():
    rows = {  # depth, H, N, batch, dropout, iterations, LR factor
        "lra/text": (TEXT_SCALES, (6, 256, 192, 32, 0.1, 50_000, 0.1)),
        "lra/retrieval": (RETRIEVAL_SCALES, (6, 128, 256, 64, 0.1, 100_000, 0.5)),
        "lra/image": (IMAGE_SCALES, (6, 512, 384, 50, 0.1, 180_000, 0.25)),
    }
    for name, (scales, expected) in rows.items():
        task, full = get_task(name), scales["full"]
        c = full.config
        assert (c.depth, c.d_model, c.d_state, full.batch_size, c.dropout,
                task.budgets.full, task.lr_factor) == expected, name
        assert full.paper and task.metric.select_by == "val_accuracy"


def test_retrieval_model_reads_both_documents(tmp_path):
    write_retrieval(tmp_path / "tsv_data", ROWS * 3)
    task = dataclasses.replace(get_task("lra/retrieval"), data_root=tmp_path)
    problem = task.setup(0, "smoke")
    loss = problem.loss(0)
    loss.backward()
    assert torch.isfinite(loss)
