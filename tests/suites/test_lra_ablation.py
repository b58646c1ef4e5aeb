"""``python -m suites.lra.ablation``: the design steps of Tables 3–4 on a task."""

from __future__ import annotations

import json

import pytest

from suites.lra import ablation
from suites.lra.model import DESIGN_STEPS, DenseRNN
from suites.registry import get_task


def test_each_design_step_builds_its_own_recurrence():
    task = get_task("lra/listops")

    def model(step):
        variant = ablation.with_design_step(task, "smoke", step)
        return variant.build_model(variant.scales["smoke"])

    assert any(isinstance(m, DenseRNN) for m in model("rnn-tanh").modules())
    assert not any(isinstance(m, DenseRNN) for m in model("lru").modules())
    names = {n.rsplit(".", 1)[-1] for n, _ in model("real-imag").named_parameters()}
    assert {"lam_re", "lam_im"} <= names and "gamma_log" not in names
    assert task.scales["smoke"].config.recurrence == "stable_exp"  # the task is unchanged
    problem = ablation.with_design_step(task, "smoke", "rnn-tanh").setup(0, "smoke")
    assert problem.param_groups[0]["name"] == "recurrent" and problem.param_groups[0]["params"]


def test_ablation_command_writes_one_row_per_step(tmp_path, one_thread, capsys):
    out = tmp_path / "a.json"
    assert ablation.main(["--budget", "smoke", "--steps", "rnn-tanh", "lru",
                          "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [r["step"] for r in report["rows"]] == ["rnn-tanh", "lru"]
    for row in report["rows"]:
        assert row["status"] == "ok" and 0 <= row["test_accuracy"] <= 1
        assert row["steps_per_s"] > 0
    assert report["hparams"] == {"eps": 1e-8, "lr": 3e-3}
    assert "rnn-tanh" in capsys.readouterr().out


def test_unknown_step_is_a_usage_error():
    with pytest.raises(SystemExit):
        ablation.main(["--steps", "no-such-step"])
    assert set(DESIGN_STEPS) >= {"rnn-tanh", "dense-a", "real-imag", "exp", "lru"}
