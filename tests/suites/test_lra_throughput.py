"""``python -m suites.lra.throughput``: steps/s per scan backend, written as JSON."""

from __future__ import annotations

import json

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
