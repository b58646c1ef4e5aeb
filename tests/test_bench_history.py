"""bench.history: kernel throughput over commits from asv's and pytest-benchmark's files,
and the kernels page that shows it."""

import json
import math
from pathlib import Path

import pytest

from bench import cases, history

A, B, C = "a" * 40, "b" * 40, "c" * 40
COLUMNS = ["result", "params", "version", "started_at", "duration"]
NGN_PARAMS = [["'ref'", "'triton'"], ["'1x1048576'", "'1x16777216'"]]
SGD_PARAMS = [["'torch_foreach'"], ["'1x1048576'"]]


def write_asv_result(machine_dir: Path, commit: str, date_s: int, ngn: list, sgd: list):
    """A result file as asv (0.6, format version 2) writes it: one list of results per
    benchmark, over the product of its parameters; NaN where setup skipped the case."""
    machine_dir.mkdir(parents=True, exist_ok=True)
    (machine_dir / "machine.json").write_text(json.dumps({"machine": machine_dir.name,
                                                          "version": 1}))
    data = {
        "commit_hash": commit, "env_name": "virtualenv-py3.11", "date": date_s * 1000,
        "params": {"machine": machine_dir.name}, "result_columns": COLUMNS, "version": 2,
        "results": {
            "benchmarks.kernels.NGNStep.time_step": [ngn, NGN_PARAMS, "v", 0, 1.0],
            "benchmarks.kernels.SGDStep.time_step": [sgd, SGD_PARAMS, "v", 0, 1.0],
            "benchmarks.other.Thing.time_it": [[1.0], [], "v", 0, 1.0],
            "benchmarks.kernels.AdamWStep.time_step": [None, [], "v", 0, 1.0],  # failed
        },
    }
    # asv writes NaN for skipped cases; json.dumps does the same
    (machine_dir / f"{commit[:8]}-virtualenv-py3.11.json").write_text(json.dumps(data))


def write_pytest_benchmark(path: Path, commit: str, when: str, median: float, dirty=False):
    case = cases.Case("ngn", "ref", (1, 1 << 20))
    info = cases.extra_info(case, median, cases.default_device())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "commit_info": {"id": commit, "time": when, "dirty": dirty},
        "machine_info": {"node": "x"},
        "benchmarks": [{"name": "test_kernel[ngn]", "stats": {"median": median},
                        "extra_info": info}],
    }))


@pytest.fixture
def results(tmp_path) -> Path:
    """cpu-2c: commits A, B, C by asv, NGN ref 20% slower at 1M in C, SGD unchanged;
    h200: commit B by pytest-benchmark only; a machine folder without machine.json."""
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
    return root


def test_points_from_both_harnesses_in_commit_order(results):
    past = history.load(results)
    assert past.commits == [A, B, C]
    assert {p.source for p in past.points} == {history.ASV, history.PYTEST_BENCHMARK}
    ngn = [p for p in past.points if (p.kernel, p.impl, p.size, p.machine)
           == ("ngn", "ref", "1x1048576", "cpu-2c")]
    assert [p.commit for p in ngn] == [A, B, C]
    moved = cases.bytes_moved(cases.Case("ngn", "ref", (1, 1 << 20)))
    assert ngn[0].gbps == pytest.approx(moved / 1e-3 / 1e9)
    assert ngn[0].peak_gbps is None  # a CPU: no datasheet figure
    assert not any(p.impl == "triton" for p in past.points)  # NaN: skipped on that commit
    gpu = [p for p in past.points if p.machine == "h200"]
    assert [p.commit for p in gpu] == [B]  # the dirty file is no point in history
    assert gpu[0].peak_gbps == 4800.0 and 0 < gpu[0].peak_fraction < 1


def test_unknown_machine_is_reported_and_skipped(results):
    past = history.load(results)
    assert not any(p.machine == "stray" for p in past.points)
    assert any(msg.startswith("asv/stray: results from an unknown machine") and
               "machine.json" in msg for msg in past.problems)


def test_asv_wins_where_both_timed_the_same_case(results):
    write_pytest_benchmark(results / "kernels" / "cpu-2c-20261201.json", C,
                           "1970-01-01T00:50:00+00:00", 9.0)
    past = history.load(results)
    same = [p for p in past.points if (p.kernel, p.impl, p.size, p.machine, p.commit)
            == ("ngn", "ref", "1x1048576", "cpu-2c", C)]
    assert len(same) == 1 and same[0].source == history.ASV


def test_changes_mark_only_what_moved_beyond_ten_percent(results):
    rows = history.changes(history.load(results))
    by_case = {(r["kernel"], r["impl"], r["size"]): r for r in rows}
    assert set(by_case) == {("ngn", "ref", "1x1048576"), ("ngn", "ref", "1x16777216"),
                            ("sgd", "torch_foreach", "1x1048576")}
    slower = by_case["ngn", "ref", "1x1048576"]
    assert (slower["before"], slower["after"]) == (B, C)
    assert slower["change"] == pytest.approx(1 / 1.25 - 1) and slower["marked"]
    assert not by_case["ngn", "ref", "1x16777216"]["marked"]  # 2.4 % slower
    assert not by_case["sgd", "torch_foreach", "1x1048576"]["marked"]  # 4.8 % slower
    assert all(r["machine"] == "cpu-2c" for r in rows)  # h200 has one commit only
    assert all(r["source"] == history.ASV for r in rows)


def test_changes_compare_each_harness_with_itself(results):
    later = "d" * 40  # a pytest-benchmark file after asv's last commit, 10x "faster"
    write_pytest_benchmark(results / "kernels" / "cpu-2c-20261203.json", later,
                           "1970-01-01T01:06:40+00:00", 1e-4)
    rows = history.changes(history.load(results))
    assert {r["source"] for r in rows} == {history.ASV}  # one pytest-benchmark commit only
    assert {(r["before"], r["after"]) for r in rows} == {(B, C)}


def test_figure_has_a_panel_per_size_and_a_line_per_series(results):
    past = history.load(results)
    fig = history.figure(past, "ngn", ["#000000", "#ff0000"])
    assert [ax.get_title() for ax in fig.axes] == ["ngn 1x1048576", "ngn 1x16777216"]
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "ref · cpu-2c" in labels and "ref · h200" in labels
    assert history.figure(past, "adamw", ["#000000"]) is None


def test_kernels_page_shows_history_plot_and_marked_table(results, tmp_path):
    from suites.sitegen import build_site

    page = (build_site(results, tmp_path / "site").parent / "kernels.html").read_text()
    start = page.index("Across commits")
    section = page[start:page.index("</section>", start)]
    assert section.count("<svg") == 2  # ngn and sgd
    table = section[section.index("<table"):section.index("</table>")]
    rows = table.split("<tr")[2:]
    marked = [r for r in rows if 'class="changed"' in r]
    assert len(rows) == 3 and len(marked) == 1
    assert "1x1048576" in marked[0] and "-20%" in marked[0] and "slower" in marked[0]
    assert "asv/stray: results from an unknown machine" in page
    again = (build_site(results, tmp_path / "again").parent / "kernels.html").read_text()
    assert again == page
