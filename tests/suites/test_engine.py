"""The leaderboard engine: submissions, the training loop, the tuning protocol, the store."""

from __future__ import annotations

import dataclasses
import json
import logging
import math

import pytest
import torch
from engine_fakes import GD_SOURCE, LION_SOURCE, FailingTask, QuadraticTask, SlowTask

from suites import registry
from suites.api import EVAL_SEED_OFFSET, Problem
from suites.executors import LocalExecutor, execute
from suites.results import SCHEMA_VERSION, ResultStore, run_key
from suites.search_space import expand_search_space
from suites.submission import InvalidSubmission, load_submission
from suites.training import optimizer_param_groups, optimizer_state_bytes
from suites.tuning import run_sweep, select_best_config
from suites.validation import validate_submission

# --------------------------------------------------------------------------- search spaces


def test_grid_is_the_cartesian_product_in_sorted_key_order():
    configs = expand_search_space({"lr": [0.1, 0.01], "beta": [0.9, 0.99]}, 8)
    assert configs == [
        {"beta": 0.9, "lr": 0.1}, {"beta": 0.9, "lr": 0.01},
        {"beta": 0.99, "lr": 0.1}, {"beta": 0.99, "lr": 0.01},
    ]


def test_log_range_is_spread_evenly_in_log_space_within_the_budget():
    configs = expand_search_space({"lr": {"min": 1e-4, "max": 1e-1, "scale": "log"}}, 4)
    assert [c["lr"] for c in configs] == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])
    mixed = expand_search_space(
        {"lr": {"min": 1e-3, "max": 1e-1, "scale": "log"}, "wd": [0.0, 0.1]}, 8
    )
    assert len(mixed) == 8  # 2 grid values x 4 range points
    linear = expand_search_space({"m": {"min": 0.0, "max": 1.0, "scale": "linear"}}, 1)
    assert linear == [{"m": 0.5}]


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({}, "empty"),
        ({"lr": []}, "empty list"),
        ({"lr": [1, 2, 3], "m": [1, 2, 3]}, "9 configurations, more than the allowed 8"),
        ({"lr": 0.1}, "one-element list"),
        ({"lr": {"min": 0.0, "max": 1.0, "scale": "log"}}, "min > 0"),
        ({"lr": {"min": 1.0, "max": 0.1}}, "min < max"),
    ],
)
def test_bad_search_spaces_are_rejected_with_the_fix(space, message):
    with pytest.raises(ValueError, match=message):
        expand_search_space(space, 8)


# --------------------------------------------------------------------------- submissions


def test_load_submission_hashes_the_source(write_submission):
    path = write_submission(GD_SOURCE)
    submission = load_submission(path)
    assert submission.name == "gd"
    assert submission.description == "Gradient descent."
    assert len(submission.source_hash) == 12
    assert len(submission.configs()) == 4
    path.write_text(path.read_text() + "\n# changed\n")
    assert load_submission(path).source_hash != submission.source_hash


@pytest.mark.parametrize(
    ("source", "line", "message"),
    [
        ("name = 'x'\nsearch_space = {'lr': [1]\n", 2, "syntax error"),
        ("import torch\nimport no_such_package_xyz\n", 2, "no_such_package_xyz is not importable"),
        ("name = 'x'\n1 / 0\n", 2, "ZeroDivisionError"),
        ("name = 3\nsearch_space = {'lr': [1e-3]}\nlr_key = 'lr'\n"
         "def build(param_groups, lr):\n    pass\n", 1, "`name` must be a string"),
        ("name = 'x'\nsearch_space = [1e-3]\nlr_key = 'lr'\n"
         "def build(param_groups, lr):\n    pass\n", 2, "`search_space` must be a dict"),
        ("name = 'x'\nsearch_space = {'lr': [1e-3]}\nlr_key = 'lr'\nbuild = 3\n", 4,
         "`build` must be a function"),
        ("name = 'x'\nsearch_space = {'lr': [1e-3]}\n"
         "def build(param_groups, lr):\n    pass\n", 1, "no `lr_key` defined"),
        ("name = 'x'\nlr_key = 'lr'\nsearch_space = {'lr': list(range(9))}\n"
         "def build(param_groups, lr):\n    pass\n", 3, "set max_configs = 9"),
        ("name = 'x'\nlr_key = 'lr'\nsearch_space = {'lr': []}\n"
         "def build(param_groups, lr):\n    pass\n", 3, "empty list"),
        ("name = 'x'\nlr_key = 'lr'\nsearch_space = {'lr': [0.1]}\n"
         "def build(param_groups, lr):\n    return None\n", 4, "not a torch.optim.Optimizer"),
        ("import torch\nname = 'x'\nlr_key = 'lr'\nsearch_space = {'lr': [0.1]}\n"
         "def build(param_groups, learning_rate):\n"
         "    return torch.optim.SGD(param_groups, lr=learning_rate)\n", 5,
         "Accept every search_space key"),
        ("import torch\nname = 'x'\nlr_key = 'lr'\nsearch_space = {'lr': [0.1, -1.0]}\n"
         "def build(param_groups, lr):\n"
         "    return torch.optim.SGD(param_groups, lr=lr)\n", 6, "raised ValueError"),
    ],
)
def test_validation_reports_file_line_problem_and_fix(write_submission, source, line, message):
    path = write_submission(source)
    problems = validate_submission(path)
    assert problems, "the submission should be invalid"
    assert any(p.line == line and message in p.message for p in problems), problems
    assert all(str(p).startswith(f"{path}:") for p in problems)


def test_valid_submission_has_no_problems(write_submission):
    assert validate_submission(write_submission(LION_SOURCE)) == []


def test_load_submission_raises_with_every_problem(write_submission):
    with pytest.raises(InvalidSubmission) as info:
        load_submission(write_submission("name = 'has space'\n"))
    text = str(info.value)
    for attribute in ("name", "search_space", "lr_key", "build"):
        assert f"`{attribute}`" in text


# --------------------------------------------------------------------------- one run


@pytest.fixture
def gd(write_submission):
    return load_submission(write_submission(GD_SOURCE))


def test_lr_scale_multiplies_the_step_size_of_its_group():
    a, b = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    groups = optimizer_param_groups(
        [{"params": [a], "name": "w"}, {"params": [b], "lr_scale": 0.1, "weight_decay": 0.0}],
        {"lr": 0.5, "momentum": 0.9}, "lr",
    )
    assert groups[0] == {"params": [a]}
    assert groups[1] == {"params": [b], "lr": pytest.approx(0.05), "weight_decay": 0.0}
    optimizer = torch.optim.SGD(groups, lr=0.5, momentum=0.9)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.5, 0.05])


class _ScheduledTask(QuadraticTask):
    """A linear loss (gradient 1) whose step sizes follow a schedule: x moves by -lr_k."""

    def __init__(self, schedule):
        super().__init__(name="fake/scheduled")
        self.schedule = schedule
        self.trace: list[tuple[float, float]] = []

    def setup(self, seed: int, budget: str) -> Problem:
        x, y = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))

        def loss(step: int) -> torch.Tensor:
            self.trace.append((float(x.detach()), float(y.detach())))
            return x.sum() + y.sum()

        return Problem(
            param_groups=[{"params": [x]}, {"params": [y], "lr_scale": 0.5}],
            loss=loss, evaluate=lambda: {"final_loss": 0.0}, steps=4,
            lr_schedule=self.schedule,
        )


def test_lr_schedule_multiplies_each_group_s_step_size_per_step(gd):
    task = _ScheduledTask(lambda step: [1.0, 0.5, 0.25, 0.0][step])
    result = execute(task, gd, {"lr": 0.1}, seed=0, budget="quick")
    assert result.status == "ok"
    moves = torch.tensor(task.trace).diff(dim=0)  # (steps - 1, 2): the moves of x and y
    assert moves[:, 0].tolist() == pytest.approx([-0.1, -0.05, -0.025])
    assert moves[:, 1].tolist() == pytest.approx([-0.05, -0.025, -0.0125])


def test_a_method_without_a_step_size_sets_its_own_steps(write_submission):
    source = GD_SOURCE.replace('lr_key = "lr"', "lr_key = None")
    task = _ScheduledTask(lambda step: [1.0, 0.5, 0.25, 0.0][step])
    result = execute(task, load_submission(write_submission(source)), {"lr": 0.1}, seed=0,
                     budget="quick")
    assert result.status == "ok", result.error
    moves = torch.tensor(task.trace).diff(dim=0)
    # Neither the schedule nor the second group's lr_scale: "lr" is not its step size.
    assert moves[:, 0].tolist() == pytest.approx([-0.1, -0.1, -0.1])
    assert moves[:, 1].tolist() == pytest.approx([-0.1, -0.1, -0.1])


def test_execute_records_curve_metrics_and_cost(gd):
    result = execute(QuadraticTask(), gd, {"lr": 0.3}, seed=0, budget="quick")
    assert result.status == "ok" and result.error is None
    assert result.steps_run == 40
    assert result.score == result.metrics["final_loss"] < 1e-3
    assert result.curve["step"][0] == 1 and result.curve["step"][-1] == 40
    assert len(result.curve["loss"]) == 40
    assert result.curve["eval_step"] == [10, 20, 30, 40]
    assert result.evals_to_target is not None and result.evals_to_target < 40
    assert result.curve["loss"][result.evals_to_target - 1] <= 1e-3
    assert result.grad_evals == 40 and result.curve["grad_evals"] == result.curve["step"]
    assert result.param_bytes == 10 * 4
    assert result.time_per_step > 0
    # No host name: the machine's label names it (run files are published).
    assert result.env["torch"] == torch.__version__ and "hostname" not in result.env
    assert result.env["machine"]
    again = execute(QuadraticTask(), gd, {"lr": 0.3}, seed=0, budget="quick")
    assert again.curve["loss"] == result.curve["loss"]


def test_optimizer_state_bytes_counts_the_buffers():
    param = torch.nn.Parameter(torch.ones(10, 5))
    optimizer = torch.optim.SGD([param], lr=0.1, momentum=0.9)
    param.grad = torch.ones_like(param)
    optimizer.step()
    assert optimizer_state_bytes(optimizer) == 10 * 5 * 4


def test_non_finite_loss_is_recorded_as_diverged(gd):
    result = execute(QuadraticTask(), gd, {"lr": 2.0}, seed=0, budget="quick")
    assert result.status == "diverged"
    assert result.score == math.inf
    assert not math.isfinite(result.curve["loss"][-1])
    assert result.steps_run < 40


def test_time_limit_is_recorded_as_timeout(gd):
    result = execute(SlowTask(), gd, {"lr": 0.1}, seed=0, budget="quick", time_limit=0.3)
    assert result.status == "timeout"
    assert 0 < result.steps_run < 10_000
    assert result.wall_time < 5


def test_exception_is_recorded_as_error_with_traceback(gd):
    result = execute(FailingTask(), gd, {"lr": 0.1}, seed=0, budget="quick")
    assert result.status == "error"
    assert "Traceback" in result.error
    assert "RuntimeError: the data loader broke at step 3" in result.error
    assert result.score == math.inf


# --------------------------------------------------------------------------- tuning protocol


def sweep(tasks, submissions, tmp_path, **kwargs):
    return run_sweep(
        tasks, submissions, "quick", store=ResultStore(tmp_path / "results"),
        executor=LocalExecutor(1, time_limit=30), **kwargs,
    )


def test_a_held_out_variant_runs_the_config_tuned_on_its_public_task_and_is_ranked_apart(
        gd, tmp_path):
    from suites import leaderboard

    variant = dataclasses.replace(QuadraticTask(), name="fake/quadratic-held-out")
    variant.tuned_on = "fake/quadratic"
    report = sweep([QuadraticTask()], [gd], tmp_path, seeds=(1, 2), variants=[variant])
    held = [r for r in report.results if r.spec.task == variant.name]
    assert held and {r.spec.phase for r in held} == {"held_out"}
    assert all(r.spec.hparams == report.best_configs[("fake/quadratic", "gd")] for r in held)
    runs = leaderboard.load_runs(tmp_path / "results")
    assert set(leaderboard.task_table(runs, "quick")["task"]) == {"fake/quadratic"}
    assert set(leaderboard.task_table(runs, "quick", phase="held_out")["task"]) == {variant.name}


def test_tuning_picks_the_best_config_and_evaluates_it_on_fresh_seeds(gd, tmp_path):
    report = sweep([QuadraticTask()], [gd], tmp_path, seeds=(2, 3))
    assert report.best_configs == {("fake/quadratic", "gd"): {"lr": 0.3}}
    tuning = [r for r in report.results if r.spec.phase == "tune"]
    evaluation = [r for r in report.results if r.spec.phase == "eval"]
    assert len(tuning) == 4 * 2 and {r.spec.seed for r in tuning} == {0, 1}
    assert {r.status for r in tuning if r.spec.hparams == {"lr": 2.0}} == {"diverged"}
    assert {r.spec.seed for r in evaluation} == {EVAL_SEED_OFFSET + i for i in range(3)}
    assert all(r.spec.hparams == {"lr": 0.3} and r.status == "ok" for r in evaluation)
    # Sensitivity: lr 0.3 × 2^k, k ≠ 0, on both tuning seeds (none of them in the grid).
    sensitivity = [r for r in report.results if r.spec.phase == "sensitivity"]
    assert sorted({r.spec.hparams["lr"] for r in sensitivity}) == [
        0.0375, 0.075, 0.15, 0.6, 1.2, 2.4]
    assert {r.spec.seed for r in sensitivity} == {0, 1}
    assert report.runs_made == 8 + 3 + 12 and report.runs_reused == 0
    assert report.made_by_phase == {"tuning": 8, "evaluation": 3, "sensitivity": 12}


def test_sensitivity_reuses_the_grid_runs_it_would_repeat(write_submission, tmp_path):
    source = GD_SOURCE.replace('search_space = {"lr": [0.01, 0.1, 0.3, 2.0]}',
                               'search_space = {"lr": [0.075, 0.15, 0.3, 2.0]}')
    assert source != GD_SOURCE
    report = sweep([QuadraticTask()], [load_submission(write_submission(source))], tmp_path)
    assert report.best_configs == {("fake/quadratic", "gd"): {"lr": 0.3}}
    # 0.3 / 4 and 0.3 / 2 are grid points: their tuning runs serve, and only 4 are made.
    assert report.made_by_phase == {"tuning": 4, "evaluation": 2, "sensitivity": 4}
    assert report.runs_reused == 2
    records = [json.loads(p.read_text())["spec"]
               for p in (tmp_path / "results").rglob("*.json")]
    assert {r["optimizer"]["lr_key"] for r in records} == {"lr"}
    assert sorted(r["hparams"]["lr"] for r in records if r["phase"] == "sensitivity") == [
        0.0375, 0.6, 1.2, 2.4]


def test_best_config_ties_go_to_fewer_steps(gd):
    metric = QuadraticTask().metric
    fast = execute(QuadraticTask(), gd, {"lr": 0.3}, seed=0, budget="quick")
    slow = execute(QuadraticTask(), gd, {"lr": 0.1}, seed=0, budget="quick")
    fast = fast.model_copy(update={"score": 1.0, "steps_run": 10})
    slow = slow.model_copy(update={"score": 1.0})
    assert select_best_config([slow, fast], metric) == {"lr": 0.3}


def test_tuning_can_select_by_a_validation_metric(gd):
    """With ``select_by`` the config with the best validation number wins, whatever its score."""
    import dataclasses

    metric = dataclasses.replace(QuadraticTask().metric, select_by="val_loss")
    good = execute(QuadraticTask(), gd, {"lr": 0.3}, seed=0, budget="quick")
    poor = execute(QuadraticTask(), gd, {"lr": 0.01}, seed=0, budget="quick")
    assert select_best_config([poor, good], QuadraticTask().metric) == {"lr": 0.3}
    good.metrics["val_loss"], poor.metrics["val_loss"] = 1.0, 0.5
    assert select_best_config([poor, good], metric) == {"lr": 0.01}
    del poor.metrics["val_loss"]  # a run that reports no validation number ranks last
    assert select_best_config([poor, good], metric) == {"lr": 0.3}


def test_rerun_makes_only_the_missing_runs(gd, tmp_path):
    first = sweep([QuadraticTask()], [gd], tmp_path)
    store = ResultStore(tmp_path / "results")
    files = sorted(store.runs_dir.rglob("*.json"))
    assert len(files) == first.runs_made == 4 + 2 + 6
    # lr 0.01 and 0.1 of the grid, 0.0375, 0.075 and 0.15 of the sensitivity phase.
    deleted = [store.path_for(r.spec) for r in first.results if r.spec.hparams["lr"] < 0.2]
    for path in deleted:
        path.unlink()
    second = sweep([QuadraticTask()], [gd], tmp_path)
    assert (second.runs_made, second.runs_reused) == (5, 7)
    assert sorted(store.runs_dir.rglob("*.json")) == files


def test_interrupted_sweep_resumes(gd, tmp_path):
    made = []

    def interrupt_after_three(result):
        made.append(result)
        if len(made) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep([QuadraticTask()], [gd], tmp_path, on_result=interrupt_after_three)
    resumed = sweep([QuadraticTask()], [gd], tmp_path)
    assert (resumed.runs_made, resumed.runs_reused) == (4 + 2 + 6 - 3, 3)


def test_sweep_survives_failing_tasks(gd, tmp_path):
    report = sweep([FailingTask(), QuadraticTask()], [gd], tmp_path)
    assert {r.status for r in report.results if r.spec.task == "fake/failing"} == {"error"}
    assert {r.status for r in report.results
            if r.spec.task == "fake/quadratic" and r.spec.phase == "eval"} == {"ok"}


# --------------------------------------------------------------------------- results store


def test_stored_run_round_trips_as_valid_json(gd, tmp_path):
    store = ResultStore(tmp_path)
    result = execute(QuadraticTask(), gd, {"lr": 2.0}, seed=0, budget="quick")
    path = store.save(result)

    def reject(constant):
        raise AssertionError(f"{constant} is not JSON")

    record = json.loads(path.read_text(), parse_constant=reject)
    assert record["schema_version"] == SCHEMA_VERSION
    assert record["score"] == "Infinity" and record["status"] == "diverged"
    assert path == tmp_path / "runs" / "fake" / "quadratic" / "gd" / f"{run_key(result.spec)}.json"
    loaded = store.load(result.spec)
    assert loaded.score == math.inf and loaded.curve["loss"][-1] == result.curve["loss"][-1]
    assert loaded.metric.to_metric() == QuadraticTask().metric
    assert loaded.model_dump_json() == result.model_dump_json()


def test_run_key_depends_on_everything_that_makes_a_run(gd):
    base = execute(QuadraticTask(), gd, {"lr": 0.3}, seed=0, budget="smoke").spec
    keys = {run_key(base)}
    other_source = base.optimizer.model_copy(update={"source_hash": "0" * 12})
    for change in ({"seed": 1}, {"budget": "quick"}, {"hparams": {"lr": 0.1}},
                   {"optimizer": other_source}, {"task": "fake/other"}):
        keys.add(run_key(base.model_copy(update=change)))
    assert len(keys) == 6
    assert run_key(base.model_copy(update={"phase": "eval"})) == run_key(base)
    # The self-tuning track's runs are its own, even at a configuration tuning also chose.
    assert run_key(base.model_copy(update={"track": "self-tuning"})) != run_key(base)


def test_atomic_write_leaves_no_temporary_files(gd, tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    result = execute(QuadraticTask(), gd, {"lr": 0.3}, seed=0, budget="smoke")
    path = store.save(result)
    assert [p.name for p in path.parent.iterdir()] == [path.name]

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("suites.results.os.replace", broken_replace)
    result = result.model_copy(update={"spec": result.spec.model_copy(update={"seed": 1})})
    with pytest.raises(OSError, match="disk full"):
        store.save(result)
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_corrupt_and_unknown_schema_files_are_skipped_with_a_warning(gd, tmp_path, caplog):
    first = sweep([QuadraticTask()], [gd], tmp_path)
    store = ResultStore(tmp_path / "results")
    corrupt = store.path_for(first.results[0].spec)
    corrupt.write_text('{"schema_version": 1, "task": ')
    future = store.path_for(first.results[1].spec)
    future.write_text(json.dumps({"schema_version": 99}))
    with caplog.at_level(logging.WARNING, logger="suites.results"):
        assert len(list(store.results())) == 4 + 2 + 6 - 2  # tune, eval, sensitivity
        rerun = sweep([QuadraticTask()], [gd], tmp_path)
    assert str(corrupt) in caplog.text and "schema_version 99" in caplog.text
    assert rerun.runs_made == 2
    assert len(list(store.results())) == 12


# --------------------------------------------------------------------------- registry


def test_selectors_pick_suites_tasks_and_globs(fake_registry):
    assert [t.name for t in registry.tasks_for(["fake"])] == [
        "fake/quadratic", "fake/quadratic-2", "fake/failing"
    ]
    assert [t.name for t in registry.tasks_for(["fake/fail*", "fake/failing"])] == [
        "fake/failing"
    ]
    with pytest.raises(ValueError, match="matches no suite"):
        registry.tasks_for(["nope"])


def test_builtin_optimizers_are_the_public_files_of_the_optimizers_package():
    paths = registry.builtin_optimizer_paths()
    assert all(not name.startswith("_") for name in paths)
    assert all(p.parent == registry.OPTIMIZERS_DIR and p.suffix == ".py" for p in paths.values())


def test_run_processes_keep_pytorchs_floating_point_defaults():
    """No process-wide flush-to-zero: a submission's numerics are its own."""
    from suites.training import warm_up

    warm_up()
    assert (torch.tensor([1e-39], dtype=torch.float32) * 1.0).item() == pytest.approx(1e-39)


FLOAT32_STATE_SOURCE = '''
import torch

name = "f32-momentum"
search_space = {"lr": [0.05]}
lr_key = "lr"


class Float32Momentum(torch.optim.Optimizer):
    """Heavy ball whose buffer is float32 whatever the parameters are."""

    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                buf = self.state[p].setdefault("buf", torch.zeros_like(p, dtype=torch.float32))
                buf.mul_(0.9).add_(p.grad.float())
                p.sub_(group["lr"] * buf.to(p.dtype))
        return loss


def build(param_groups, lr):
    return Float32Momentum(param_groups, lr)
'''


def test_a_float32_state_optimizer_on_a_float64_chain_runs_as_it_does_outside(write_submission):
    """The same steps by hand and through the runner give the same losses, bit for bit:
    the runner sets no floating-point mode of its own."""
    from suites.chain.neural_chain import chain_loss
    from suites.training import seed_everything

    submission = load_submission(write_submission(FLOAT32_STATE_SOURCE))
    task = registry.get_task("chain/depth-16-uniform")
    result = execute(task, submission, {"lr": 0.05}, 0, "quick")
    assert result.status == "ok" and result.steps_run == task.budgets.quick

    seed_everything(task.name, 0)
    (w,) = task.setup(0, "quick").param_groups[0]["params"]
    optimizer = submission.build([{"params": [w]}], lr=0.05)
    losses = []

    def closure():
        optimizer.zero_grad()
        loss = chain_loss(w)
        loss.backward()
        return loss

    for _ in range(result.steps_run):
        losses.append(float(optimizer.step(closure)))
    assert result.curve["loss"] == losses  # 300 steps: the curve keeps every one
