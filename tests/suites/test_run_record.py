"""One run is declared once (``suites.record.RunResult``): the run file, the runs table's
columns and the training worker's message derive from it. A field added in one place
reaches all three."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from suites.record import (
    COLUMNS,
    Number,
    OptimizerRef,
    RunResult,
    RunSpec,
    TrainingReport,
    column,
    column_readers,
    measured,
    report_model,
    table_row,
)


class WithLastStep(RunResult):
    """A run record with one more measured field, declared once, as a column."""

    last_step_size: Number = measured(math.nan, column_name=True)


class WithDriverField(RunResult):
    """One more field that the driver writes: a column, never in the worker's message."""

    queue_seconds: Number = column(default=0.0)


def a_run(model=RunResult, **fields):
    spec = RunSpec(task="chain/depth-4-const", budget="smoke", hparams={"lr": 0.1}, seed=0,
                   optimizer=OptimizerRef(name="sgd", source_hash="0" * 12, lr_key="lr"))
    return model(spec=spec, suite="chain", status="ok", score=3.0, steps_run=3, grad_evals=3,
                 **fields)


def test_a_measured_field_reaches_the_message_the_file_and_the_table():
    run = a_run(WithLastStep, last_step_size=0.05)
    # The worker's message: derived, so it carries the new field and still nothing else.
    report = report_model(WithLastStep)
    assert "last_step_size" in report.model_fields
    assert set(report.model_fields) == set(TrainingReport.model_fields) | {"last_step_size"}
    report.model_validate({"status": "ok", "last_step_size": 0.05})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        TrainingReport.model_validate({"status": "ok", "last_step_size": 0.05})
    # The run file: written and read back.
    document = json.loads(json.dumps(run.to_document()))
    assert document["last_step_size"] == 0.05
    body = {k: v for k, v in document.items() if k not in ("schema_version", "run_key",
                                                           "digest")}
    assert WithLastStep.model_validate(body).last_step_size == 0.05
    # The table: a column, in the declared order, before the computed ones.
    assert "last_step_size" in column_readers(WithLastStep)
    assert table_row(run)["last_step_size"] == 0.05
    assert "last_step_size" not in COLUMNS  # the project's own record is unchanged


def test_a_driver_field_is_a_column_and_never_in_the_message():
    run = a_run(WithDriverField, queue_seconds=1.5)
    assert table_row(run)["queue_seconds"] == 1.5
    assert "queue_seconds" not in report_model(WithDriverField).model_fields
    assert run.to_document()["queue_seconds"] == 1.5


def test_the_message_is_exactly_the_measured_fields():
    measured_names = {name for name, info in RunResult.model_fields.items()
                      if (info.json_schema_extra or {}).get("measured")}
    assert set(TrainingReport.model_fields) == measured_names
    # What only the driver knows is never the worker's to say.
    for owned_by_driver in ("spec", "score", "metrics", "env", "wall_time", "sandbox",
                            "invalid", "peak_rss_bytes", "param_bytes", "created"):
        assert owned_by_driver not in TrainingReport.model_fields


def test_the_table_has_every_declared_column_and_the_computed_ones():
    row = table_row(a_run())
    assert list(row) == list(COLUMNS)
    assert row["optimizer"] == "sgd" and row["task"] == "chain/depth-4-const"
    assert row["config_key"] == '{"lr":0.1}' and row["evals_per_step"] == 1.0
    assert row["run_key"] == a_run().key
