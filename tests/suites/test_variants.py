"""Held-out variants: the tasks each suite's ``variants()`` defines and never tunes on.

Each variant is an ordinary task of its suite whose ``tuned_on`` names the public task
whose tuned configuration it runs with; its name is its own, and its data differ from
that public task's.
"""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch

import suites.chain
import suites.lra
import suites.valley
from suites.api import Budget, Task
from suites.executors.local import execute
from suites.lra.data.release import CACHE_ENV_VAR, ROOT_ENV_VAR
from suites.registry import builtin_optimizer_paths
from suites.submission import load_submission
from suites.valley.linear_net import sparse_regression

SUITES = {"chain": suites.chain, "valley": suites.valley, "lra": suites.lra}
VARIANTS = {name: module.variants() for name, module in SUITES.items()}
PUBLIC = {name: {t.name: t for t in module.tasks()} for name, module in SUITES.items()}
#: Set-up plus one step of a chain or valley variant at smoke takes well under this (the
#: fastest of a few tries: on a loaded machine one try can wait for a core).
ONE_STEP_SECONDS = 0.5
TIMING_REPEATS = 3


@pytest.fixture(autouse=True)
def isolated_data(monkeypatch, tmp_path):
    """Generated LRA data go to the test's directory; no release root."""
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.setenv(ROOT_ENV_VAR, str(tmp_path / "lra"))


@pytest.fixture(scope="module")
def sgd():
    return load_submission(builtin_optimizer_paths()["sgd"])


def one_sgd_step(task, sgd):
    """``task`` at smoke, cut to one step, through the runner: (result, seconds)."""
    started = time.perf_counter()
    result = execute(dataclasses.replace(task, budgets=Budget(1, 1, 1)), sgd, {"lr": 0.01},
                     seed=0, budget="smoke")
    return result, time.perf_counter() - started


def public_of(variant: Task) -> Task:
    return PUBLIC[variant.suite][variant.tuned_on]


@pytest.mark.parametrize("suite", list(SUITES))
def test_each_suite_holds_out_two_to_five_variants_of_its_own(suite):
    variants = VARIANTS[suite]
    assert 2 <= len(variants) <= 5
    for variant in variants:
        assert isinstance(variant, Task) and variant.suite == suite
        assert variant.name.startswith(f"{suite}/")
        assert type(variant) is type(public_of(variant))  # an ordinary task of the suite


def test_variant_names_are_unique_and_never_public():
    names = [v.name for variants in VARIANTS.values() for v in variants]
    public = {name for tasks in PUBLIC.values() for name in tasks}
    assert len(names) == len(set(names))
    assert not set(names) & public


@pytest.mark.parametrize("suite", list(SUITES))
def test_every_variant_is_tuned_on_a_public_task_of_its_suite(suite):
    for variant in VARIANTS[suite]:
        assert variant.tuned_on in PUBLIC[suite], variant.name
        assert f"Held-out variant of {variant.tuned_on}" in variant.description
        assert variant.metric == public_of(variant).metric
        assert variant.budgets == public_of(variant).budgets
    assert all(task.tuned_on is None for task in PUBLIC[suite].values())


@pytest.mark.parametrize("variant", VARIANTS["chain"] + VARIANTS["valley"],
                         ids=lambda v: v.name)
def test_chain_and_valley_variants_take_an_sgd_step_in_a_fraction_of_a_second(
    variant, sgd, one_thread
):
    """On one thread, as every executor runs a run."""
    one_sgd_step(variant, sgd)  # first imports and caches out of the timing
    runs = [one_sgd_step(variant, sgd) for _ in range(TIMING_REPEATS)]
    assert all(r.status == "ok" and r.steps_run == 1 for r, _ in runs), runs[0][0].error
    assert min(seconds for _, seconds in runs) < ONE_STEP_SECONDS


def test_chain_variants_start_from_their_own_seed_stream():
    for variant in VARIANTS["chain"]:
        public_depths = {t.depth for t in PUBLIC["chain"].values() if hasattr(t, "depth")}
        assert variant.depth not in public_depths
        same_task_public_stream = dataclasses.replace(variant, seed_stream=0)
        for seed in (0, 1000):
            start = variant.initial_weights(seed)
            assert start.shape == (variant.depth,)
            assert not torch.equal(start, same_task_public_stream.initial_weights(seed))


def test_valley_variants_change_the_dimension_width_or_data():
    by_name = {v.name: v for v in VARIANTS["valley"]}
    valley = by_name["valley/widening-d200"]
    x0 = valley.setup(0, "smoke").param_groups[0]["params"][0]
    public_x0 = public_of(valley).setup(0, "smoke").param_groups[0]["params"][0]
    assert x0.shape == (201,) and public_x0.shape == (101,)
    assert valley.loss_tolerance == public_of(valley).loss_tolerance / 2

    wider = by_name["valley/linear-net-w1000"]
    w1 = wider.setup(0, "smoke").param_groups[0]["params"][0]
    assert w1.shape == (1000, 10) and public_of(wider).width == 3000

    other = by_name["valley/linear-net-w300-data-seed-1"]
    x, y = sparse_regression(other.n, other.d0, other.data_seed)
    public_x, public_y = sparse_regression(other.n, other.d0)
    assert x.shape == public_x.shape and not torch.equal(x, public_x)
    assert not torch.equal(y, public_y)
    loss, public_loss = (t.setup(0, "smoke").loss(0).item() for t in (other, public_of(other)))
    assert loss != public_loss  # the same start (same width and run seed), other data


def lra_variant(name: str) -> Task:
    return next(v for v in VARIANTS["lra"] if v.name == name)


def assert_lra_variant_trains_on_other_data(variant, sgd):
    result, _ = one_sgd_step(variant, sgd)
    assert result.status == "ok" and result.steps_run == 1, result.error
    assert variant.missing_data("smoke") is None and variant.missing_data("quick") is None
    assert "held-out variant" in variant.missing_data("full")  # not the public release
    mine, public = variant.splits("smoke"), public_of(variant).splits("smoke")
    for split in ("train", "val", "test"):
        a, b = getattr(mine, split), getattr(public, split)
        assert len(a) == len(b)
        assert a.inputs.shape != b.inputs.shape or not torch.equal(a.inputs, b.inputs)
        assert not torch.equal(a.labels, b.labels)


def test_pathfinder_variant_draws_other_images(sgd):
    variant = lra_variant("lra/pathfinder-seed-7")
    assert {variant.generator_seed(s) for s in ("train", "val", "test")}.isdisjoint(
        {public_of(variant).generator_seed(s) for s in ("train", "val", "test")})
    assert_lra_variant_trains_on_other_data(variant, sgd)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lra/listops-len-120", "lra/listops-seed-1"])
def test_listops_variants_draw_other_expressions(name, sgd):
    """Slow: each draw generates 7,000 expressions, seconds; the Pathfinder test above is
    the fast check of the same property."""
    variant = lra_variant(name)
    assert_lra_variant_trains_on_other_data(variant, sgd)
    lengths = variant.splits("quick").train.lengths
    public_lengths = public_of(variant).splits("quick").train.lengths
    if name == "lra/listops-len-120":
        assert lengths.max() >= 80 > public_lengths.max()
        assert lengths.float().mean() > public_lengths.float().mean()
