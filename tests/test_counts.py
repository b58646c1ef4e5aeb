"""The count gate's parts: the verdict, the figures, callgrind's client requests and dumps,
the cases it measures, and the records (tests/test_counts_gate.py runs it whole)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import callgrind, cases, count_gate, count_paths, counts, static_figures

ROOT = Path(__file__).resolve().parents[1]


def record(series: dict[str, float], *, kind="instructions", measured=None, absent=None):
    return {
        "series": {name: {"kind": kind, "case": name.split("/", 1)[1], "unit": "u",
                          "value": value} for name, value in series.items()},
        "measured": measured or {"instructions": [n.split("/", 1)[1] for n in series],
                                 "static": []},
        "absent": absent or {},
    }


def test_a_count_moved_when_it_changed_by_more_than_two_percent():
    assert count_gate.THRESHOLD == 0.02
    assert count_gate.moved(100, 102.1) and count_gate.moved(100, 97.9)
    assert not count_gate.moved(100, 101.9) and not count_gate.moved(100, 98.1)
    assert count_gate.moved(0, 1) and not count_gate.moved(0, 0)


def test_compare_names_what_moved_what_is_gone_and_what_is_new():
    base = record({"instructions/a": 1000, "instructions/b": 1000, "instructions/c": 50})
    head = record({"instructions/a": 1030, "instructions/b": 1010, "instructions/d": 7},
                  absent={"c": "AttributeError: no such function"})
    head["measured"]["instructions"] += ["c"]
    base["measured"]["instructions"] += ["d"]  # absent in the base: the commit lacked it
    rows = {r.name: r for r in count_gate.compare(base, head)}
    assert rows["instructions/a"].status == "moved"
    assert rows["instructions/a"].change == pytest.approx(0.03)
    assert rows["instructions/b"].status == "same"
    assert rows["instructions/c"].status == "gone"
    assert rows["instructions/c"].why_absent == "AttributeError: no such function"
    assert rows["instructions/d"].status == "new"
    assert {r.name for r in count_gate.failed(list(rows.values()))} == {
        "instructions/a", "instructions/c"}


def test_compare_leaves_out_cases_that_one_side_did_not_measure():
    base = record({"instructions/a": 1000, "instructions/b": 1000})
    head = record({"instructions/a": 2000}, measured={"instructions": ["a"], "static": []})
    assert [r.name for r in count_gate.compare(base, head)] == ["instructions/a"]


def test_the_table_puts_wall_times_beside_the_instruction_counts():
    base = record({"instructions/a": 1000})
    head = record({"instructions/a": 1100})
    text = count_gate.table(count_gate.compare(base, head), {"a": 0.002}, {"a": 0.0031})
    header, row = text.splitlines()
    assert header.split() == ["series", "unit", "base", "head", "change", "wall", "base",
                              "wall", "head"]
    assert "+10.00%" in row and "2.00 ms" in row and "3.10 ms" in row


def compiled(arch, registers, occupancy, loads, stores, spills=0, shared=0):
    return {"arch": arch, "registers": registers, "occupancy": occupancy, "loads": loads,
            "stores": stores, "spill_stores": spills, "spill_loads": 0, "shared_bytes": shared}


def test_static_figures_combine_the_kernels_of_a_case_per_architecture():
    report = {"cases": [{
        "name": "scan_fwdbwd 1x2x3", "unit": "complex64 element", "bytes_per_element": 40.5,
        "kernels": [
            {"compiled": [compiled("sm_90", 77, 0.375, {"64": 5}, {"64": 4}, shared=4096)]},
            {"compiled": [compiled("sm_90", 64, 0.5, {"64": 3, "32": 1}, {"64": 2}, spills=8,
                                   shared=2048)]},
        ]}]}
    by_figure = {(s["figure"], s["arch"]): s for s in static_figures.figures(report)}
    assert by_figure["bytes_per_element", None]["unit"] == "bytes per complex64 element"
    assert by_figure["bytes_per_element", None]["value"] == 40.5
    values = {figure: s["value"] for (figure, arch), s in by_figure.items() if arch == "sm_90"}
    assert values == {"registers": 77, "spill_bytes": 8, "shared_bytes": 4096,
                      "occupancy": 0.375, "global_loads": 9, "global_stores": 6,
                      "load_bits": (8 * 64 + 32) / 9, "store_bits": 64}
    assert set(values) == set(static_figures.COMPILE_UNITS)


def test_every_static_report_case_is_followed_or_skipped_with_a_reason():
    from kernels.report import collect_cases

    names = {c.name for c in collect_cases()}
    assert set(cases.STATIC_CASES) | set(cases.STATIC_SKIPPED) == names
    assert not set(cases.STATIC_CASES) & set(cases.STATIC_SKIPPED)
    assert all(reason for reason in cases.STATIC_SKIPPED.values())


def test_every_instruction_case_builds_and_runs_here():
    for case in cases.INSTRUCTION_CASES:
        assert cases.instruction_case(case.name) == case
        count_paths.build(case.name)()
    with pytest.raises(ValueError, match="no instruction case"):
        cases.instruction_case("adamw[nope-1x1]")


def test_a_commit_without_the_entry_point_has_the_case_absent(monkeypatch):
    from kernels import optim

    monkeypatch.delattr(optim, "adamw_step_ref")
    with pytest.raises(count_paths.Absent, match="AttributeError.*adamw_step_ref"):
        count_paths.build("adamw[reference-1x1048576]")


def test_client_requests_are_no_ops_outside_valgrind():
    if callgrind.valgrind_missing() and "not wired" in callgrind.valgrind_missing():
        pytest.skip(callgrind.valgrind_missing())
    requests = callgrind.ClientRequests()
    assert not requests.on_valgrind
    assert requests(callgrind.TOGGLE_COLLECT) == 0


def test_read_dumps_takes_each_named_dump_total(tmp_path):
    (tmp_path / "callgrind.out.7").write_text("desc: Trigger: Program termination\n"
                                              "summary: 5\ntotals: 5\n")
    (tmp_path / "callgrind.out.7.1").write_text(
        "desc: Timerange: Basic block 0 - 9\ndesc: Trigger: Client Request: "
        "adamw[reference-1x8]\n\nevents: Ir\nsummary: 1234\ntotals: 1234\n")
    assert callgrind.read_dumps(tmp_path) == {"adamw[reference-1x8]": 1234}


@pytest.mark.skipif(callgrind.valgrind_missing() is not None,
                    reason=f"{callgrind.valgrind_missing()}")
def test_callgrind_counts_a_statement_twice_alike_and_twice_the_work(tmp_path):
    """The fast sibling of the gate test: no torch, a pure-Python statement."""
    script = ("from bench.callgrind import ClientRequests\n"
              "r = ClientRequests()\n"
              "for name, n in (('a', 20000), ('b', 20000), ('c', 40000)):\n"
              "    r.count(name, lambda: sum(i * i for i in range(n)))\n")
    subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                    "--collect-atstart=no", f"--callgrind-out-file={tmp_path}/callgrind.out.%p",
                    sys.executable, "-c", script], cwd=ROOT, check=True, capture_output=True,
                   env={**callgrind.WORKER_ENV, "PATH": "/usr/bin:/bin"}, timeout=300)
    found = callgrind.read_dumps(tmp_path)
    assert abs(found["a"] / found["b"] - 1) < 0.005
    assert found["c"] / found["a"] == pytest.approx(2, rel=0.05)


def test_without_valgrind_the_instruction_counts_are_skipped_with_a_message(
        monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "valgrind is not installed" in callgrind.valgrind_missing()
    part: dict = {"series": {}, "absent": {}}
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    counts._instruction_series(env, tmp_path, part, ["ngn[reference-1x1048576]"])
    assert "instruction counts skipped: valgrind is not installed" in capsys.readouterr().err
    assert part["absent"] == {"ngn[reference-1x1048576]": callgrind.valgrind_missing()}
    assert not part["series"]
    assert part["wall_seconds"]["ngn[reference-1x1048576]"] > 0  # wall time all the same


def git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid",
               "-c", "commit.gpgsign=false", *args]
    return subprocess.run(command, cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_a_commit_with_the_same_kernels_tree_takes_the_measured_record(tmp_path):
    repo = tmp_path / "repo"
    (repo / "kernels").mkdir(parents=True)
    (repo / "kernels" / "__init__.py").write_text("")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "kernels")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "README.md").write_text("a note\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "README only")
    second = git(repo, "rev-parse", "HEAD")
    env = dict.fromkeys(counts.ENVIRONMENT, "same")
    measured = {**record({"instructions/a": 5}), **counts.commit_info(repo, first), **env,
                "measured_commit": None, "dirty": False}
    counts.save(repo, measured)
    wanted = {"instructions": ["a"], "static": []}
    reused = counts.stored(repo, second, env, wanted)
    assert reused["commit"] == second and reused["measured_commit"] == first
    assert reused["subject"] == "README only" and reused["order"] == 2
    assert reused["series"] == measured["series"]
    assert counts.stored(repo, second, {**env, "torch": "other"}, wanted) is None
    assert counts.stored(repo, second, env, {"instructions": ["a", "b"], "static": []}) is None
    exported = tmp_path / "export"
    counts.export_kernels(repo, second, exported)
    assert (exported / "kernels" / "__init__.py").is_file()


def test_records_are_json_files_named_by_commit(tmp_path):
    repo = tmp_path
    path = counts.save(repo, {"commit": "a" * 40, "dirty": False, "series": {}})
    assert path == repo / "results" / "counts" / f"{'a' * 40}.json"
    assert json.loads(path.read_text())["commit"] == "a" * 40
    dirty = counts.save(repo, {"commit": "a" * 40, "dirty": True, "series": {}})
    assert dirty.name == f"{'a' * 40}-dirty.json"


def test_the_make_targets_run_the_gate():
    if shutil.which("make") is None:
        pytest.skip("no make")
    planned = subprocess.run(["make", "-n", "counts", "counts-compare", "BASE=abc123"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "-m bench.counts measure" in planned
    assert "-m bench.counts compare --base abc123" in planned
    assert "apt-get install -y -qq valgrind" in planned


def test_repeat_without_valgrind_says_why(monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert counts.main(["--repo", str(ROOT), "repeat", "--runs", "2"]) == 2
    assert "valgrind is not installed" in capsys.readouterr().err


def test_a_second_measurement_of_other_cases_is_merged_into_the_record():
    old = {**record({"instructions/a": 5}), "wall_seconds": {"a": 0.1}, "seconds": 10.0,
           "absent": {"s": "not measured yet"}}
    old["measured"] = {"instructions": ["a"], "static": ["s"]}
    new = {"series": {"bytes_per_element/s": {"kind": "bytes", "case": "s", "unit": "u",
                                              "value": 16.0}},
           "measured": {"instructions": [], "static": ["s"]}, "absent": {},
           "wall_seconds": {}, "seconds": 20.0}
    both = counts.merged(old, new)
    assert set(both["series"]) == {"instructions/a", "bytes_per_element/s"}
    assert both["absent"] == {} and both["wall_seconds"] == {"a": 0.1}
    assert both["measured"] == {"instructions": ["a"], "static": ["s"]}
    assert both["seconds"] == 30.0


@pytest.mark.parametrize("option, kind", [("--instruction-cases", "instructions"),
                                          ("--static-cases", "static")])
def test_an_unknown_case_is_refused_with_the_known_ones(option, kind, capsys):
    with pytest.raises(SystemExit) as stop:
        counts.main(["--repo", str(ROOT), "measure", option, "no-such-case"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"no {kind} case 'no-such-case'" in err
    known = cases.INSTRUCTION_CASES[0].name if kind == "instructions" else cases.STATIC_CASES[0]
    assert known in err


def test_chosen_cases_are_what_is_measured():
    args = counts.parser().parse_args(
        ["measure", "--instruction-cases", "adamw[reference-1x1048576]", "--only", "instructions"])
    assert counts._wanted(args) == {"instructions": ["adamw[reference-1x1048576]"], "static": []}
