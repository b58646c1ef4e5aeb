"""``python -m suites.lra.throughput``: steps/s per scan backend, written as JSON."""

from __future__ import annotations

import json
import os

import pytest

from suites.lra import throughput


def test_throughput_times_each_backend_and_writes_json(tmp_path, one_thread, capsys):
    out = tmp_path / "t.json"
    assert throughput.main(["--tasks", "lra/listops", "--budget", "smoke", "--steps", "2",
                            "--warmup", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    (row,) = report["rows"]
    assert row["task"] == "lra/listops" and row["table_8_a100_full"] == 2.1
    assert set(row["steps_per_s"]) == {"sequential", "chunked"}  # no GPU: no Triton timing
    assert all(v > 0 for v in row["steps_per_s"].values())
    assert report["machine"] and report["env"]["torch"]
    printed = capsys.readouterr().out
    assert "lra/listops" in printed and f"written to {out}" in printed
    assert not list(tmp_path.glob(".*.tmp"))


def test_the_backend_choice_reaches_the_scan(monkeypatch, one_thread):
    import kernels.scan as scan

    used = []
    original = scan.resolve_backend

    def spy(backend, device):
        used.append(original(backend, device))
        return used[-1]

    monkeypatch.setattr(scan, "resolve_backend", spy)
    task = throughput.registry.get_task("lra/listops")
    throughput.steps_per_second(task, "smoke", "sequential", steps=1, warmup=0)
    assert used and set(used) == {"sequential"}


def test_bad_arguments_are_usage_errors(tmp_path):
    with pytest.raises(SystemExit):
        throughput.main(["--tasks", "lra/no-such-task", "--out", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit):
        throughput.main(["--steps", "0"])


def test_every_row_takes_the_same_optimizer_step(monkeypatch, one_thread):
    # Only the scan backend varies; the optimizer backend is resolved once, and the scan's
    # variable is the one set (never the optimizers').
    seen = []

    def spy(task, budget, backend, steps, warmup, optimizer_backend="torch"):
        seen.append((backend, optimizer_backend, os.environ.get("LSB_OPTIM_BACKEND")))
        return 1.0

    monkeypatch.delenv("LSB_OPTIM_BACKEND", raising=False)
    monkeypatch.setattr(throughput, "steps_per_second", spy)
    report = throughput.measure(["lra/listops"], "smoke", ["sequential", "chunked"], 1, 0)
    assert [s[0] for s in seen] == ["sequential", "chunked"]
    assert {s[1] for s in seen} == {"torch"} and {s[2] for s in seen} == {None}
    assert report["optimizer"] == "kernels.optim.AdamW(backend='torch')"


def test_the_scan_variable_is_set_only_while_timing(monkeypatch, one_thread):
    monkeypatch.delenv("LSB_SCAN_BACKEND", raising=False)
    task = throughput.registry.get_task("lra/listops")
    throughput.steps_per_second(task, "smoke", "chunked", steps=1, warmup=0)
    assert "LSB_SCAN_BACKEND" not in os.environ
