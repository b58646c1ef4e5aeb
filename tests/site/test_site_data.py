"""The site's page data (``suites.site_data``) on the fixture results directory."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from site_fixture import EVAL_SEEDS, HOSTILE_NAME, VARIANTS

from suites import site_data
from suites.sitegen import Slugs, docstring_markup, fmt_percent, fmt_score, optimizer_colours


@pytest.fixture(scope="module")
def results(results_dir):
    return site_data.load_results(results_dir)


def test_load_results_reports_invalid_files(results):
    problems = {p.path: p.reason for p in results.problems}
    assert set(problems) == {"runs/chain/broken.json", "runs/valley/future.json"}
    assert problems["runs/chain/broken.json"].startswith("not readable as JSON")
    assert "schema_version 99" in problems["runs/valley/future.json"]
    # 5 tasks x 4 optimizers x (2 tuning configs + 3 evaluation seeds), and the held-out
    # variants: 3 tasks x 4 optimizers x 3 evaluation seeds
    assert len(results.runs) == len(results.records) == \
        5 * 4 * (2 + len(EVAL_SEEDS)) + len(VARIANTS) * 4 * len(EVAL_SEEDS)
    assert set(results.runs["file"]) == set(results.records)
    assert all(f.startswith("runs/") for f in results.runs["file"])


def test_malformed_record_is_a_problem_not_a_crash(tmp_path, results_dir):
    source = next((results_dir / "runs" / "valley" / "widening").rglob("*.json"))
    record = json.loads(source.read_text())
    record["spec"]["optimizer"] = "not a mapping"
    target = tmp_path / "runs" / "valley" / "widening" / "x" / "bad.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(record))
    loaded = site_data.load_results(tmp_path)
    assert loaded.runs.empty
    assert [p.path for p in loaded.problems] == ["runs/valley/widening/x/bad.json"]
    assert "field spec.optimizer: Input should be a valid dictionary" in \
        loaded.problems[0].reason


def test_empty_results(tmp_path):
    loaded = site_data.load_results(tmp_path / "missing")
    assert loaded.runs.empty and loaded.problems == []
    assert site_data.site_budget(loaded.runs) is None


def test_leaderboard_frame(results):
    assert site_data.site_budget(results.runs) == "quick"
    board = site_data.leaderboard_frame(results.runs, "quick")
    assert list(board["rank"]) == sorted(board["rank"])
    assert {"suite:chain", "suite:valley", "suite:lra"} <= set(board.columns)
    assert set(board["runs"]) == {5 * (2 + len(EVAL_SEEDS)) + len(VARIANTS) * len(EVAL_SEEDS)}
    row = board.set_index("optimizer").loc["sgd"]
    assert row["tasks_solved"] == 4  # never escapes the depth-16 chain
    assert row["last_updated"] == results.runs.loc[results.runs["optimizer"] == "sgd",
                                                   "created"].max()
    assert 0.0 <= board["profile_score"].min() <= board["profile_score"].max() <= 1.0
    # adam is the best on valley and lra in the fixture: per-suite score 1
    adam = board.set_index("optimizer").loc["adam"]
    assert adam["suite:valley"] == pytest.approx(1.0)
    assert adam["suite:lra"] == pytest.approx(1.0)


def test_profile_curves_are_monotone_and_end_at_solved_share(results):
    profile = site_data.profile_curves(results.runs, "quick")
    assert profile.index[0] == 1.0 and profile.index[-1] == 4.0
    assert (profile.diff().dropna() >= 0).all().all()
    assert profile["sgd"].iloc[-1] <= 4 / 5
    # the area under the plotted step curve is the leaderboard's score
    widths = np.diff(profile.index.to_numpy())
    area = (profile.iloc[:-1].mul(widths, axis=0).sum() / 3.0).sort_index()
    board = site_data.leaderboard_frame(results.runs, "quick").set_index("optimizer")
    assert np.allclose(area, board["profile_score"].sort_index())


def test_sweep_frame_marks_the_diverged_config(results):
    sweep = site_data.sweep_frame(results.runs, "quick", "sgd")
    valley = sweep[sweep["task"] == "valley/widening"].set_index("config_key")
    diverged = valley.loc['{"lr":0.1}']
    assert diverged["statuses"] == "diverged 1"
    assert math.isinf(diverged["ratio"]) and not diverged["near_best"]
    best = valley.loc['{"lr":0.01}']
    assert best["ratio"] == 1.0 and best["near_best"] and best["succeeded"] == 1
    assert all(f.startswith("runs/valley/widening/sgd/") for f in best["files"])
    # higher-is-better ratios are best / score
    lra = sweep[sweep["task"] == "lra/listops"].set_index("config_key")
    assert lra.loc['{"lr":0.01}', "ratio"] == pytest.approx(0.35 / 0.30)


def test_eval_files_are_the_chosen_config_by_seed(results):
    index = site_data.eval_file_index(results.current, "quick")
    files = index[("chain/depth-4-const", "adam", '{"lr":0.1}')]
    assert ("chain/depth-4-const", "adam", '{"lr":0.01}') not in index  # not the chosen one
    seeds = [results.records[f].spec.seed for f in files]
    assert seeds == list(EVAL_SEEDS)
    assert {results.records[f].spec.phase for f in files} == {"eval"}


def test_curve_band_median_and_range_over_runs_of_different_lengths():
    band = site_data.curve_band(
        [([1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0]), ([1, 2], [3.0, 4.0]), ([1, 2, 3], [2.0, 3.0, 5.0])],
        log=False,
    )
    assert list(band.steps) == [1, 2, 3, 4]
    assert list(band.median) == [2.0, 3.0, 4.0, 4.0]
    assert list(band.low) == [1.0, 2.0, 3.0, 4.0]
    assert list(band.high) == [3.0, 4.0, 5.0, 4.0]
    assert band.seeds == 3


def test_curve_band_drops_non_finite_and_non_positive_for_log():
    band = site_data.curve_band([([1, 2, 3], [1.0, math.inf, 0.0])], log=True)
    assert list(band.steps) == [1] and list(band.median) == [1.0]
    assert site_data.curve_band([([1], [math.nan])], log=False) is None
    assert site_data.curve_band([], log=True) is None
    long = site_data.curve_band([(np.arange(5000), np.ones(5000))], log=False, points=100)
    assert len(long.steps) <= 100 and long.steps[0] == 0 and long.steps[-1] == 4999


def test_kernel_frame(results_dir):
    frame, problems = site_data.kernel_frame(results_dir / "kernels")
    assert [p.path for p in problems] == ["kernels/truncated.json"]
    assert set(frame["device"]) == {"NVIDIA H100 80GB HBM3"}
    assert set(frame["machine"]) == {"gpu-host · AMD EPYC 7763"}
    triton = frame[frame["impl"] == "triton"].set_index(["kernel", "size"])["speedup"]
    assert triton[("scan_fwd", "4×256×64")] == pytest.approx(8.0)
    assert triton[("adamw", "16×4096×512")] == pytest.approx(6.0)
    reference = frame[frame["impl"] == frame["reference"]]
    assert set(reference["impl"]) == {"chunked", "ref"}
    assert (reference["speedup"] == 1.0).all()
    sizes = list(frame.loc[frame["kernel"] == "adamw", "size"].drop_duplicates())
    assert sizes == ["4×256×64", "16×4096×512"]  # natural order, not text order
    assert frame["peak_fraction"].between(0, 1).all()


def test_kernel_frame_without_benchmarks(tmp_path):
    frame, problems = site_data.kernel_frame(tmp_path / "kernels")
    assert frame.empty and problems == []


def test_optimizer_source_is_read_not_run(tmp_path):
    path = tmp_path / "opt.py"
    path.write_text('"""Docs with <b>tags</b>."""\nraise SystemExit("never run")\n'
                    'search_space = {"lr": [0.1, 1e-3], "eps": {"min": 1e-8, "max": 1e-4}}\n')
    digest = site_data.file_hash(path.read_bytes())
    source = site_data.optimizer_source("opt", digest, str(path))
    assert source.state == "current"
    assert source.description == "Docs with <b>tags</b>."
    assert source.search_space == [("lr", "[0.1, 0.001]"), ("eps", "{min: 1e-08, max: 0.0001}")]
    assert site_data.optimizer_source("opt", "0" * 12, str(path)).state == "changed"
    assert site_data.optimizer_source("opt", digest, str(tmp_path / "gone.py")).state == "missing"
    found = site_data.optimizer_source("opt", digest, "/elsewhere/opt.py", [path])
    assert found.state == "current"


def test_format_config_and_natural_order():
    assert site_data.format_config('{"eps":1e-08,"lr":0.1}') == "eps=1e-08, lr=0.1"
    assert site_data.format_config("{}") == "(no hyperparameters)"
    tasks = ["chain/depth-16-const", "chain/depth-4-const", "chain/depth-8-const", "x/y"]
    assert site_data.task_order(tasks, ["x/y"]) == [
        "x/y", "chain/depth-4-const", "chain/depth-8-const", "chain/depth-16-const"]
    assert site_data.suite_order(["zzz", "valley", "chain"]) == ["chain", "valley", "zzz"]


def test_slugs_are_safe_and_unique():
    slugs = Slugs()
    assert slugs("optimizer", "adam") == "adam"
    assert slugs("task", "chain/depth-4-const") == "chain--depth-4-const"
    hostile = slugs("optimizer", HOSTILE_NAME)
    assert all(c.isalnum() or c in "-_." for c in hostile)
    assert slugs("optimizer", "..") not in ("..", "", ".")
    assert slugs("optimizer", "a b") != slugs("optimizer", "a-b")
    assert slugs("optimizer", HOSTILE_NAME) == hostile  # stable


def test_colours_follow_the_sorted_name_index():
    colours = optimizer_colours(["sgd", "adam", "rmsprop", "adam"])
    assert list(colours) == ["adam", "rmsprop", "sgd"]
    assert optimizer_colours(["adam", "rmsprop", "sgd", "zeta"])["sgd"] == colours["sgd"]


def test_formatting():
    assert fmt_score(math.inf) == "fail" and fmt_score(-math.inf) == "fail"
    assert fmt_score(math.nan) == "—" and fmt_score(123.456) == "123.5"
    assert fmt_percent(0.0123) == "1.2%" and fmt_percent(0.5) == "50%"
    markup = docstring_markup("Use ``x <- y`` & <script>")
    assert str(markup) == "Use <code>x &lt;- y</code> &amp; &lt;script&gt;"


def test_kernel_tables_for_the_cli(results_dir):
    frame, _ = site_data.kernel_frame(results_dir / "kernels")
    (table,) = site_data.kernel_tables(frame)
    assert table["device"] == "NVIDIA H100 80GB HBM3"
    assert table["machine"] == "gpu-host · AMD EPYC 7763" and table["commit"] == "0123456789ab"
    fused = [r for r in table["rows"] if r["fused"]]
    assert {r["impl"] for r in fused} == {"triton"} and len(fused) == 4
    assert sum(r["is_reference"] for r in table["rows"]) == 4


def test_not_above_chance_names_optimizers_whose_whole_grid_stayed_there():
    import pandas as pd

    from suites.api import Chance

    chance = Chance(score=0.5, examples=1_000)  # ceiling 0.547
    rows = [("a", "tune", 0.50), ("a", "tune", 0.54), ("a", "sensitivity", 0.547),
            ("b", "tune", 0.50), ("b", "tune", 0.51), ("b", "eval", 0.56),  # any run counts
            ("c", "tune", math.nan), ("c", "tune", math.nan)]  # every run failed
    runs = pd.DataFrame([{"task": "lra/x", "budget": "quick", "phase": phase,
                          "optimizer": name, "score": score} for name, phase, score in rows]
                        + [{"task": "lra/y", "budget": "quick", "phase": "tune",
                            "optimizer": "d", "score": 0.1}])
    assert site_data.not_above_chance(runs, "quick", "lra/x", chance) == ["a", "c"]
    assert site_data.not_above_chance(runs, "full", "lra/x", chance) == []
