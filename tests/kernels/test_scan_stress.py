"""bench.scan_stress, the GPU day's stress pass: its checks run here under the
interpreter at toy sizes (the pass itself needs CUDA and refuses to run without)."""

import json

import pytest
from markers import needs_interpreter
from test_scan import _vectorized_interpreter_scans  # noqa: F401

from bench import scan_stress


@needs_interpreter
def test_repeated_launches_are_bitwise_equal_and_near_the_oracle():
    (check,) = scan_stress.repeated_launches(600, 2, shapes=[(1, 2)], lengths=[96],
                                             device="cpu")
    assert check.status == "pass", check.detail
    assert check.figures["launches"] == 4 and check.figures["mismatches"] == 0
    assert max(check.figures["vs_complex128"].values()) <= scan_stress.ORACLE_RTOL
    assert "4 launches, 0 not bitwise equal" in check.line()


def test_no_time_left_is_a_timeout():
    checks = scan_stress.repeated_launches(-1, 2, shapes=[(1, 1)], lengths=[64, 128],
                                           device="cpu")
    assert [c.status for c in checks] == ["timeout", "timeout"]


def test_a_child_that_runs_out_of_time_is_a_timeout():
    status, _ = scan_stress._child(["sleep", "5"], 1)
    assert status is None and scan_stress._status(status) == "timeout"
    assert scan_stress._status(0) == "pass" and scan_stress._status(3) == "fail"


def test_synccheck_is_skipped_without_compute_sanitizer(monkeypatch):
    monkeypatch.setattr(scan_stress.shutil, "which", lambda name: None)
    monkeypatch.setattr(scan_stress.os.path, "exists", lambda path: False)
    check = scan_stress.synccheck(10)
    assert check.status == "skipped" and "not installed" in check.detail


def test_the_pass_writes_its_json_and_fails_without_cuda(tmp_path, monkeypatch, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("on a GPU the pass runs for minutes")
    out = tmp_path / "stress.json"
    assert scan_stress.main(["--out", str(out)]) == 1
    report = json.loads(out.read_text())
    assert report["passed"] is False and [c["status"] for c in report["checks"]] == ["fail"]
    assert "FAIL    cuda: no CUDA device" in capsys.readouterr().out
