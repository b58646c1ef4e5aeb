"""bench.asv_run: bad input gets a message naming the fix, before asv starts; a failed
or interrupted asv run leaves the results directory as it was."""

import json
import subprocess
import sys

import pytest

from bench import asv_run, cases, static_figures


def test_asv_missing_names_the_install(monkeypatch, capsys):
    monkeypatch.setattr(asv_run.importlib.util, "find_spec", lambda name: None)
    assert asv_run.main(["run", "HEAD~1..HEAD"]) == 2
    err = capsys.readouterr().err
    assert "asv is not installed" in err and "pip install 'asv>=0.6'" in err
    assert "Traceback" not in err


def test_a_range_with_no_commits(capsys):
    assert asv_run.main(["run", "HEAD..HEAD", "--machine", "m"]) == 2
    err = capsys.readouterr().err
    assert "names no commits" in err and "HEAD~5..HEAD" in err


def test_a_range_git_cannot_read(capsys):
    assert asv_run.main(["run", "no-such-branch..HEAD", "--machine", "m"]) == 2
    err = capsys.readouterr().err
    assert "git cannot read" in err and "bad revision" in err


def test_one_commit_is_timed_alone_not_with_its_ancestors():
    assert asv_run.range_spec("abc123") == "abc123^!"
    assert asv_run.range_spec("HEAD~3..HEAD") == "HEAD~3..HEAD"
    assert len(asv_run.commits("HEAD")) == 1


@pytest.fixture
def machine_file(tmp_path, monkeypatch):
    path = tmp_path / ".asv-machine.json"
    monkeypatch.setattr(asv_run, "MACHINE_FILE", path)
    return path


def test_machine_file_missing(machine_file, capsys):
    assert asv_run.main(["run", "HEAD~1..HEAD", "--machine", "cpu-2c"]) == 2
    err = capsys.readouterr().err
    assert "machine file" in err and "is missing" in err
    assert "asv machine --machine cpu-2c --yes" in err


def test_machine_not_in_the_machine_file(machine_file, capsys):
    machine_file.write_text(json.dumps({"other": {}, "version": 1}))
    assert asv_run.main(["run", "HEAD~1..HEAD", "--machine", "cpu-2c"]) == 2
    err = capsys.readouterr().err
    assert "no machine 'cpu-2c' (it has: other)" in err
    assert "asv machine --machine cpu-2c --yes" in err


def test_compare_with_results_from_an_unknown_machine(machine_file, tmp_path, monkeypatch,
                                                      capsys):
    results = tmp_path / "results"
    (results / "cpu-2c").mkdir(parents=True)
    (results / "cpu-2c" / "machine.json").write_text("{}")
    monkeypatch.setattr(asv_run, "results_dir", lambda: results)
    assert asv_run.main(["compare", "HEAD~1", "HEAD", "--machine", "h100"]) == 2
    err = capsys.readouterr().err
    assert "no asv results of machine 'h100'" in err and "machines with results: cpu-2c" in err


def test_extra_arguments_after_the_separator_go_to_asv():
    args = asv_run.parser().parse_args(["continuous", "main", "--machine", "m"])
    args.asv_args = ["-b", "NGN"]
    command = asv_run.asv_command(args)
    assert command[-2:] == ["-b", "NGN"] and command[command.index("--machine") + 1] == "m"
    assert command[command.index("--factor") + 1] == "1.1"


@pytest.mark.parametrize("status, kept", [(1, False), (2, True)])
def test_results_are_put_back_unless_asv_finished(tmp_path, monkeypatch, status, kept):
    results = tmp_path / "results"
    (results / "m").mkdir(parents=True)
    (results / "m" / "old.json").write_text("old")
    monkeypatch.setattr(asv_run, "results_dir", lambda: results)
    write_then_exit = (
        f"import pathlib, sys; d = pathlib.Path({str(results)!r}) / 'm'; "
        "(d / 'old.json').write_text('half'); (d / 'new.json').write_text('half'); "
        f"sys.exit({status})"
    )
    rc = asv_run.run_keeping_results([sys.executable, "-c", write_then_exit], {0, 2})
    assert rc == status
    names = sorted(p.name for p in (results / "m").iterdir())
    if kept:
        assert names == ["new.json", "old.json"]
    else:
        assert names == ["old.json"] and (results / "m" / "old.json").read_text() == "old"


def test_cli_prints_no_traceback():
    out = subprocess.run([sys.executable, "-m", "bench.asv_run", "run", "HEAD..HEAD",
                          "--machine", "m"], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.startswith("error:")
    assert "Traceback" not in out.stderr


def test_asv_finds_the_kernel_benchmarks_and_nothing_else():
    """asv imports every module of ``bench`` (its benchmark_dir) and takes any
    ``time_*``/``track_*`` name for a benchmark: only the kernel classes' timings and the
    static figures' tracks may match."""
    listing = (
        "from asv_runner.discovery import disc_benchmarks; "
        "print('\\n'.join(sorted(b.name for b in disc_benchmarks('bench'))))"
    )
    out = subprocess.run([sys.executable, "-c", listing], cwd=asv_run.ROOT,
                         capture_output=True, text=True, check=True)
    classes = ["AdamWStep", "NGNStep", "SGDStep", "ScanForward", "ScanForwardBackward"]
    tracks = sorted(["bytes_per_element"] + [f"{arch}_{figure}" for arch in ("sm_80", "sm_90")
                                             for figure in static_figures.COMPILE_UNITS])
    assert out.stdout.split() == (
        [f"benchmarks.counts.StaticFigures.track_{t}" for t in tracks]
        + [f"benchmarks.kernels.{c}.time_step" for c in classes])


def test_the_static_tracks_read_one_report_per_commit(monkeypatch):
    from bench.benchmarks import counts as suite

    case = cases.STATIC_CASES[0]
    compiled = {"arch": "sm_90", "registers": 77, "occupancy": 0.375, "loads": {"64": 5},
                "stores": {"64": 4}, "spill_stores": 0, "spill_loads": 0, "shared_bytes": 0}
    report = {"cases": [{"name": case, "bytes_per_element": 16.5,
                         "kernels": [{"compiled": [compiled]}]}]}
    monkeypatch.setattr(static_figures, "build_report", lambda names, processes: report)
    bench = suite.StaticFigures()
    figures = bench.setup_cache()
    bench.setup(figures, case)
    assert bench.track_bytes_per_element(figures, case) == 16.5
    assert bench.track_sm_90_registers(figures, case) == 77
    assert suite.StaticFigures.track_sm_90_occupancy.unit == "fraction of the SM's warps"
    with pytest.raises(NotImplementedError, match="no case"):
        bench.setup(figures, cases.STATIC_CASES[1])
