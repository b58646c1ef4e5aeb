"""Attacks on the readers of run files: a file with a wrong field type, a bare NaN, a name
that is mathtext, and results whose coverage is odd (disjoint tasks, one optimizer, no
evaluation). None of them may crash ``lsb show`` or ``lsb site build``; an invalid file
is skipped with a message that names the file and the field."""

from __future__ import annotations

import json
import logging
import math
import re

import pytest
from reliability_data import ACCURACY, a_run_file, html_pages, result, sweep

from suites import leaderboard, site_data
from suites.cli import main
from suites.results import ResultStore, parse_document
from suites.sitegen import build_site, plots

# (what is wrong, field named in the message, change to the valid document)
INVALID = [
    ("curve as a string", "curve", lambda d: d.update(curve="1,2,3")),
    ("curve values as strings", "curve.loss.0", lambda d: d["curve"].update(loss=["x"])),
    ("created as an int", "created", lambda d: d.update(created=1767268800)),
    ("created not a time", "created", lambda d: d.update(created="yesterday")),
    ("seed as a string", "spec.seed", lambda d: d["spec"].update(seed="0")),
    ("seed as a boolean", "spec.seed", lambda d: d["spec"].update(seed=True)),
    ("an int optimizer name", "spec.optimizer.name",
     lambda d: d["spec"]["optimizer"].update(name=7)),
    ("an empty optimizer name", "spec.optimizer.name",
     lambda d: d["spec"]["optimizer"].update(name="")),
    ("a name with a newline", "spec.optimizer.name",
     lambda d: d["spec"]["optimizer"].update(name="sgd\nFAKE")),
    ("score as text", "score", lambda d: d.update(score="fast")),
    ("score as a list", "score", lambda d: d.update(score=[1])),
    ("an object hyperparameter", "spec.hparams.lr",
     lambda d: d["spec"]["hparams"].update(lr={"a": 1})),
    ("a nested list hyperparameter", "spec.hparams.lr",
     lambda d: d["spec"]["hparams"].update(lr=[[0.9]])),
    ("a metric value as text", "metrics.loss", lambda d: d["metrics"].update(loss="low")),
    ("an unknown status", "status", lambda d: d.update(status="great")),
    ("an unknown phase", "spec.phase", lambda d: d["spec"].update(phase="final")),
    ("negative steps", "steps_run", lambda d: d.update(steps_run=-1)),
    ("the spec missing", "spec", lambda d: d.pop("spec")),
    ("an unknown field", "injected", lambda d: d.update(injected="hello")),
    ("wall time as text", "wall_time", lambda d: d.update(wall_time="quick")),
    ("metric orientation as text", "metric.higher_is_better",
     lambda d: d["metric"].update(higher_is_better="yes")),
    ("metrics as a list", "metrics", lambda d: d.update(metrics=[1.0])),
    ("env as a string", "env", lambda d: d.update(env="cpu")),
]


@pytest.mark.parametrize(("what", "field", "change"), INVALID, ids=[w for w, _, _ in INVALID])
def test_an_invalid_file_is_skipped_naming_the_file_and_field(tmp_path, caplog, capsys,
                                                              what, field, change):
    root = tmp_path / "results"
    store = ResultStore(root)
    sweep(store, "chain/depth-4-const", "sgd")
    path, document = a_run_file(ResultStore(tmp_path / "scratch"))
    change(document)
    bad = root / "runs" / "chain" / "bad.json"
    bad.write_text(json.dumps(document))

    with caplog.at_level(logging.WARNING, logger="suites.results"):
        assert main(["show", "--results", str(root)]) == 0
    assert "sgd" in capsys.readouterr().out
    assert str(bad) in caplog.text and f"field {field}:" in caplog.text

    results = site_data.load_results(root)
    [problem] = results.problems
    assert problem.path == "runs/chain/bad.json" and f"field {field}:" in problem.reason
    assert len(results.records) == 4
    index = build_site(root, tmp_path / "site").read_text()
    assert "runs/chain/bad.json" in index


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_a_bare_non_finite_literal_makes_a_file_invalid(tmp_path, literal):
    _, document = a_run_file(ResultStore(tmp_path))
    text = json.dumps(document).replace('"score": 10.0', f'"score": {literal}')
    assert literal in text
    with pytest.raises(ValueError, match=f"bare {literal} is not JSON"):
        parse_document(text)
    quoted, _, _ = parse_document(text.replace(f'"score": {literal}', f'"score": "{literal}"'))
    assert repr(quoted.score) == repr(float(literal))


def test_a_valid_file_reads_back_unchanged(tmp_path):
    store = ResultStore(tmp_path)
    run = result(score=math.inf, status="diverged")
    store.save(run)
    [stored] = store.results()
    assert stored.score == math.inf and stored.spec.seed == run.spec.seed
    assert store.load(run.spec).curve == run.curve


# --------------------------------------------------------------------------- coverage


def disjoint(store: ResultStore) -> None:
    sweep(store, "chain/depth-4-const", "sgd")
    sweep(store, "valley/widening", "adam")


def one_optimizer(store: ResultStore) -> None:
    sweep(store, "chain/depth-4-const", "sgd")
    sweep(store, "valley/widening", "sgd")


def tuning_only(store: ResultStore) -> None:
    sweep(store, "chain/depth-4-const", "sgd", phases=("tune",))


def evaluation_only(store: ResultStore) -> None:
    sweep(store, "chain/depth-4-const", "sgd", phases=("eval",))
    sweep(store, "chain/depth-4-const", "adam", phases=("eval",), score=5.0)


def unknown_suite(store: ResultStore) -> None:
    sweep(store, "nosuch/task-1", "sgd", metric=ACCURACY, score=0.5)
    sweep(store, "nosuch/task-1", "adam", metric=ACCURACY, score=0.7)


def every_run_failed(store: ResultStore) -> None:
    sweep(store, "chain/depth-4-const", "sgd", status="error", score=math.nan)
    sweep(store, "chain/depth-4-const", "adam", status="timeout", score=math.inf)
    sweep(store, "chain/depth-8-const", "sgd")
    sweep(store, "chain/depth-8-const", "adam", score=20.0)


def metric_missing(store: ResultStore) -> None:
    sweep(store, "chain/depth-4-const", "sgd", metric=None)
    sweep(store, "chain/depth-4-const", "adam", metric=None, score=5.0)


def mathtext_names(store: ResultStore) -> None:
    sweep(store, "chain/depth-4-const", r"$\frac{$")
    sweep(store, r"chain/$\frac{$", r"$\frac{$", score=3.0)
    sweep(store, "chain/depth-4-const", "$x$", score=4.0)


COVERAGE = [disjoint, one_optimizer, tuning_only, evaluation_only, unknown_suite,
            every_run_failed, metric_missing, mathtext_names]


@pytest.mark.parametrize("scenario", COVERAGE, ids=[s.__name__ for s in COVERAGE])
def test_no_coverage_crashes_show_or_the_site(tmp_path, capsys, scenario):
    root = tmp_path / "results"
    scenario(ResultStore(root))
    assert main(["show", "--results", str(root)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    runs = leaderboard.load_runs(root)
    overall = leaderboard.overall_table(runs, "quick")
    assert overall.empty or overall["rank"].dtype.kind == "i"
    index = build_site(root, tmp_path / "site")
    assert index.is_file()
    if scenario is not tuning_only:
        assert len(html_pages(index.parent)) > 3


def test_disjoint_tasks_rank_every_optimizer_without_a_profile(tmp_path):
    root = tmp_path / "results"
    disjoint(ResultStore(root))
    overall = leaderboard.overall_table(leaderboard.load_runs(root), "quick")
    assert list(overall["optimizer"]) == ["adam", "sgd"]
    assert overall["profile_score"].isna().all() and list(overall["rank"]) == [1, 1]
    assert list(overall["tasks"]) == [0, 0]
    index = build_site(root, tmp_path / "site").read_text()
    assert "No task has been run by every optimizer" in index


def test_mathtext_names_are_drawn_as_typed(tmp_path):
    root = tmp_path / "results"
    mathtext_names(ResultStore(root))
    site = build_site(root, tmp_path / "site").parent
    svg = "".join(p.read_text() for p in html_pages(site))
    assert r"$\frac{$" in svg.replace("&#36;", "$")
    assert "mathdefault" not in svg


def test_log_axes_need_no_mathtext():
    import numpy as np

    from suites.site_data import Band

    steps = np.arange(1.0, 50.0)
    band = Band(steps, np.exp(-steps / 5) + 1e-6, np.exp(-steps / 5), np.exp(-steps / 4) + 1e-5,
                2)
    for scale in ("log", "symlog"):
        svg = plots.plot_bands({r"$\frac{$": band}, {r"$\frac{$": "#000000"}, ylabel="$y$",
                               scale=scale, salt="t")
        assert "mathdefault" not in svg and "$y$" in svg


def test_a_file_that_flips_its_metric_is_not_ranked_and_is_listed_as_a_problem(
        tmp_path, capsys, caplog):
    """A run file may not carry its own scoring rules: one that says its chain metric is
    higher-is-better (and so would top the board with the most steps) is not ranked."""
    from suites.record import MetricRecord

    root = tmp_path / "results"
    store = ResultStore(root)
    sweep(store, "chain/depth-4-const", "sgd", score=10.0)
    sweep(store, "chain/depth-4-const", "adam", score=5.0)
    flipped = result("chain/depth-4-const", "lion", score=500.0)
    flipped = flipped.model_copy(update={"metric": MetricRecord.of(flipped.metric.to_metric())
                                         .model_copy(update={"higher_is_better": True})})
    path = store.save(flipped)
    with caplog.at_level(logging.WARNING):
        assert main(["show", "--results", str(root), "--budget", "quick"]) == 0
    out = capsys.readouterr().out
    assert "lion" not in out and "adam" in out
    assert "higher_is_better is True" in caplog.text and path.name in caplog.text
    index = build_site(root, tmp_path / "site").read_text()
    problems = index[index.index('id="problems"'):]
    assert path.name in problems and "scoring rules come from the registry" in problems


def test_the_self_tuning_track_has_its_own_table_and_a_column_on_task_pages(tmp_path):
    root = tmp_path / "results"
    store = ResultStore(root)
    for optimizer, score in (("sgd", 10.0), ("adam", 5.0)):
        sweep(store, "chain/depth-4-const", optimizer, score=score)
        sweep(store, "chain/depth-8-const", optimizer, score=score)
    for optimizer, score in (("sgd", 40.0), ("adam", 7.0)):  # at their defaults, no tuning
        for task in ("chain/depth-4-const", "chain/depth-8-const"):
            for seed in (1000, 1001):
                run = result(task, optimizer, seed=seed, score=score)
                store.save(run.model_copy(update={"spec": run.spec.model_copy(
                    update={"track": "self-tuning"})}))
    site = build_site(root, tmp_path / "site").parent
    index = (site / "index.html").read_text()
    board = index[index.index('id="self-tuning"'):]
    assert "Self-tuning track" in board and "8 runs" in board
    assert board.index("adam") < board.index("sgd")
    leaderboard_part = index[index.index('id="leaderboard"'):index.index('id="self-tuning"')]
    # The tuned board holds the external track only: no cell shows the defaults' 40 (a
    # time stamp like 14:27:40 in it is no score).
    assert not re.search(r">\s*40(\.0*)?\s*<", leaderboard_part)
    task = (site / "task" / "chain--depth-4-const.html").read_text()
    assert ">Self-tuning</th>" in task and ">40</td>" in task and ">7</td>" in task
