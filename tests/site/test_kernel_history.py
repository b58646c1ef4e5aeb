"""The kernels page across commits: the count gate's records with each series' first bad
commit (site and ``lsb show --kernels``), and wall-clock timings from asv and
pytest-benchmark files (``suites.site_data.kernels``)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from suites.site_data import kernels as kernel_data
from suites.site_data.kernels import counts as count_data
from suites.site_data.kernels import timings as timing_data

A, B, C, D = "a" * 40, "b" * 40, "c" * 40, "d" * 40
COLUMNS = ["result", "params", "version", "started_at", "duration"]
NGN_PARAMS = [["'ref'", "'triton'"], ["'1x1048576'", "'1x16777216'"]]
SGD_PARAMS = [["'torch_foreach'"], ["'1x1048576'"]]
ENV = {"machine": "cpu-2c", "cpu": "Some CPU", "torch": "2.13.0", "triton": "3.9.0",
       "python": "3.11.7", "valgrind": "valgrind-3.19.0", "harness": "h1"}


def write_asv_result(machine_dir: Path, commit: str, date_s: int, ngn: list, sgd: list):
    """A result file as asv (0.6, format version 2) writes it; NaN where setup skipped."""
    machine_dir.mkdir(parents=True, exist_ok=True)
    (machine_dir / "machine.json").write_text(json.dumps({"machine": machine_dir.name}))
    data = {
        "commit_hash": commit, "date": date_s * 1000, "result_columns": COLUMNS, "version": 2,
        "results": {
            "benchmarks.kernels.NGNStep.time_step": [ngn, NGN_PARAMS, "v", 0, 1.0],
            "benchmarks.kernels.SGDStep.time_step": [sgd, SGD_PARAMS, "v", 0, 1.0],
            "benchmarks.counts.StaticFigures.track_registers": [[77], [["'x'"]], "v", 0, 1],
            "benchmarks.kernels.AdamWStep.time_step": [None, [], "v", 0, 1.0],  # failed
        },
    }
    (machine_dir / f"{commit[:8]}-virtualenv-py3.11.json").write_text(json.dumps(data))


def write_pytest_benchmark(path: Path, commit: str, when: str, median: float, dirty=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "commit_info": {"id": commit, "time": when, "dirty": dirty},
        "machine_info": {"node": "x", "label": "h200"},
        "benchmarks": [{"name": "test_kernel[ngn]", "stats": {"median": median},
                        "extra_info": {"kernel": "ngn", "impl": "triton", "size": [1, 1048576],
                                       "bytes": 16 << 20, "device": "NVIDIA H200"}}],
    }))


def write_count_record(counts_dir: Path, commit: str, order: int, subject: str,
                       values: dict[str, float], **fields):
    counts_dir.mkdir(parents=True, exist_ok=True)
    series = {name: {"kind": "instructions" if name.startswith("instr") else "compile",
                     "figure": name.split("/")[0], "case": name.split("/", 1)[1],
                     "unit": "instructions per call", "value": value}
              for name, value in values.items()}
    record = {"format": 1, "commit": commit, "subject": subject, "order": order,
              "commit_time": f"2026-12-0{order}T00:00:00+00:00", "dirty": False,
              "threshold": 0.02, "series": series, "absent": {}, "wall_seconds": {},
              "measured_commit": None, **ENV, **fields}
    suffix = "-dirty" if record["dirty"] else ""
    (counts_dir / f"{commit}{suffix}.json").write_text(json.dumps(record))


@pytest.fixture
def results(tmp_path) -> Path:
    """asv on cpu-2c: commits A, B, C, NGN ref 25 % slower at 1M in C; pytest-benchmark
    on h200 at B (and a dirty file at C); a machine folder without machine.json. Count
    records of A-D: the reference AdamW +3 % at C, a spill from 0 at D, +1.9 % elsewhere."""
    root = tmp_path / "results"
    nan = math.nan
    write_asv_result(root / "asv" / "cpu-2c", A, 1000, [1e-3, 4e-3, nan, nan], [2e-4])
    write_asv_result(root / "asv" / "cpu-2c", B, 2000, [1e-3, 4e-3, nan, nan], [2e-4])
    write_asv_result(root / "asv" / "cpu-2c", C, 3000, [1.25e-3, 4.1e-3, nan, nan], [2.1e-4])
    write_pytest_benchmark(root / "kernels" / "h200-20261201.json", B,
                           "1970-01-01T00:33:20+00:00", 1e-5)
    write_pytest_benchmark(root / "kernels" / "h200-20261202.json", C,
                           "1970-01-01T00:50:00+00:00", 1e-5, dirty=True)
    (root / "asv" / "stray").mkdir()
    (root / "asv" / "stray" / "0123abcd-env.json").write_text("{}")
    counts = root / "counts"
    adamw, scan, spill = ("instructions/adamw[reference-1x1048576]",
                          "instructions/scan_fwd[chunked-8x256x256]", "sm_90 spill_bytes/scan")
    write_count_record(counts, D, 4, "the scan spills <now>", {adamw: 103.0, scan: 102.0,
                                                                spill: 16.0})
    write_count_record(counts, A, 1, "first", {adamw: 100.0, scan: 100.0, spill: 0.0})
    write_count_record(counts, B, 2, "a README note", {adamw: 100.0, scan: 101.9, spill: 0.0},
                       measured_commit=A)
    write_count_record(counts, C, 3, "AdamW: one more pass", {adamw: 103.0, scan: 102.0,
                                                              spill: 0.0})
    write_count_record(counts, "e" * 40, 5, "elsewhere", {adamw: 1.0}, machine="h200")
    write_count_record(counts, "f" * 40, 5, "work in progress", {adamw: 1.0}, dirty=True)
    return root


def test_timings_from_both_harnesses_in_commit_order(results):
    timings = timing_data.load(results)
    assert timings.commits == [A, B, C]
    assert {p.source for p in timings.points} == {timing_data.ASV, timing_data.PYTEST_BENCHMARK}
    ngn = [p for p in timings.points if (p.benchmark, p.impl, p.size) ==
           ("NGNStep", "ref", "1x1048576")]
    assert [(p.commit, p.seconds) for p in ngn] == [(A, 1e-3), (B, 1e-3), (C, 1.25e-3)]
    assert not any(p.impl == "triton" and p.source == timing_data.ASV for p in timings.points)
    gpu = [p for p in timings.points if p.machine == "h200"]
    assert [(p.benchmark, p.commit) for p in gpu] == [("ngn", B)]  # the dirty file: no point
    assert not any(p.benchmark == "StaticFigures" for p in timings.points)  # not a time_*
    assert any(msg.startswith("asv/stray: results from an unknown machine")
               for msg in timings.problems)


def test_timing_changes_mark_only_what_moved_beyond_ten_percent(results):
    rows = timing_data.changes(timing_data.load(results))
    by_case = {(r["benchmark"], r["impl"], r["size"]): r for r in rows}
    assert set(by_case) == {("NGNStep", "ref", "1x1048576"), ("NGNStep", "ref", "1x16777216"),
                            ("SGDStep", "torch_foreach", "1x1048576")}
    slower = by_case["NGNStep", "ref", "1x1048576"]
    assert (slower["before"], slower["after"]) == (B, C)
    assert slower["change"] == pytest.approx(0.25) and slower["marked"]
    assert not by_case["NGNStep", "ref", "1x16777216"]["marked"]  # 2.5 % slower
    assert all(r["source"] == timing_data.ASV for r in rows)  # h200: one commit only


def test_first_bad_commit_is_the_first_move_beyond_the_threshold():
    assert count_data.first_bad((100, 101.9, 102.0, 110), 0.02) == 3
    assert count_data.first_bad((100, None, 103), 0.02) == 2
    assert count_data.first_bad((0, 0, 8), 0.02) == 2
    assert count_data.first_bad((None, 5, 5), 0.02) is None


def test_count_history_of_one_environment_in_commit_order(results):
    history = kernel_data.load_counts(results / "counts")
    assert [c.commit for c in history.commits] == [A, B, C, D]
    assert history.commits[1].measured_commit == A
    assert history.left_out == 2  # another machine, and a dirty working tree
    assert history.threshold == 0.02 and history.environment == ENV
    first_bad = {s.name: s.first_bad for s in history.series}
    assert first_bad == {"instructions/adamw[reference-1x1048576]": 2,
                         "instructions/scan_fwd[chunked-8x256x256]": None,  # 1.9 %, 0.1 %
                         "sm_90 spill_bytes/scan": 3}
    assert history.figures() == ["instructions", "sm_90 spill_bytes"]
    rows = {r["name"]: r for r in kernel_data.moved_rows(history)}
    adamw = rows["instructions/adamw[reference-1x1048576]"]
    assert (adamw["commit"], adamw["subject"]) == (C, "AdamW: one more pass")
    assert (adamw["before"], adamw["after"], adamw["last"]) == (100.0, 103.0, 103.0)
    assert adamw["after_gap"] is None


def test_a_move_across_commits_that_lack_the_series_names_the_gap(tmp_path):
    name = "bytes_per_element/scan"
    write_count_record(tmp_path, A, 1, "first", {name: 24.0})
    write_count_record(tmp_path, B, 2, "no static report here", {})
    write_count_record(tmp_path, C, 3, "measured again", {name: 16.0})
    (row,) = kernel_data.moved_rows(kernel_data.load_counts(tmp_path))
    assert (row["commit"], row["after_gap"], row["before"]) == (C, A, 24.0)


def test_the_kernels_page_plots_counts_and_names_each_first_bad_commit(results, tmp_path):
    from suites.sitegen import build_site

    page = (build_site(results, tmp_path / "site").parent / "kernels.html").read_text()
    section = page[page.index("Counts per commit"):]
    section = section[:section.index("</section>")]
    assert "4 commits" in section and "2 records of other environments" in section
    table = section[section.index("<table"):section.index("</table>")]
    rows = table.split("<tr")[2:]
    assert len(rows) == 2
    assert "AdamW: one more pass" in rows[0] and "adamw[reference-1x1048576]" in rows[0]
    assert "the scan spills &lt;now&gt;" in rows[1]  # a subject is text, never markup
    svgs = re.findall(r"<svg.*?</svg>", section, flags=re.S)
    assert len(svgs) == 2  # instructions, sm_90 spill_bytes
    titles = re.findall(r"<title>(.*?)</title>", svgs[0])
    assert titles == [f"{A[:8]} first",
                      f"{B[:8]} a README note (figures of {A[:8]}, the same kernels/ tree)",
                      f"{C[:8]} AdamW: one more pass", f"{D[:8]} the scan spills &lt;now&gt;"]
    assert "3 series; 1 never moved" in section
    timings = page[page.index("Wall-clock timings across commits"):]
    assert timings[:timings.index("</section>")].count("<svg") == 3  # NGNStep, SGDStep, ngn
    again = (build_site(results, tmp_path / "again").parent / "kernels.html").read_text()
    assert again == page


def test_lsb_show_kernels_prints_the_first_bad_commits(results, capsys):
    from suites.console import print_kernels

    assert print_kernels(results) == 0
    out = capsys.readouterr().out
    section = out[out.index("== counts per commit: 4 commits on cpu-2c"):]
    assert f"{C[:8]} AdamW: one more pass" in section
    assert f"{D[:8]} the scan spills <now>" in section
    assert "1 of 3 series never moved; 2 records of other environments" in section


def test_without_records_the_page_and_console_say_how_to_make_them(tmp_path, capsys):
    from suites.console import print_kernels

    (tmp_path / "results").mkdir()
    assert print_kernels(tmp_path / "results") == 0
    assert "no count records in" in capsys.readouterr().out
    assert kernel_data.load_counts(tmp_path / "results" / "counts").commits == []
