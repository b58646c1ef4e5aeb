"""The store's summary (``results/summary.jsonl``): the runs table, cached per file's bytes."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from suites.results import SUMMARY_FILE, ResultStore, runs_table

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "results"


def uncached(store: ResultStore) -> pd.DataFrame:
    """The runs table as it is made without a summary: every file parsed."""
    runs, _ = store.scan()
    return runs_table(runs, store.root, store.verified())


@pytest.fixture
def store(tmp_path) -> ResultStore:
    """A store of committed runs of every phase and both budgets, plus one whose numbers
    the summary must keep as they are: NaN, infinities, ``None``, a modified file."""
    root = tmp_path / "results"
    files = sorted((COMMITTED / "runs").rglob("*.json"))
    for path in files[::150]:
        target = root / path.relative_to(COMMITTED)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    odd = json.loads(files[0].read_bytes())
    odd.update(score="Infinity", time_per_step="NaN", evals_to_target=None,
               wall_time="-Infinity", peak_rss_bytes=None, error="boom\nline 2")
    # Edited after the driver wrote it (digest no longer matches): a ``modified`` row.
    target = root / files[0].relative_to(COMMITTED).with_name("edited.json")
    target.write_text(json.dumps(odd, indent=1))
    return ResultStore(root)


def test_the_cached_table_equals_the_uncached_one(store):
    first, skipped = store.table()  # builds the summary
    assert (store.root / SUMMARY_FILE).is_file()
    second, _ = store.table()  # reads it
    expected = uncached(store)
    pd.testing.assert_frame_equal(first, expected, check_exact=True)
    pd.testing.assert_frame_equal(second, expected, check_exact=True)
    edited = second[second["file"].str.endswith("edited.json")].iloc[0]
    assert edited["modified"] and math.isinf(edited["score"]) and edited["score"] > 0
    assert math.isnan(edited["time_per_step"]) and edited["wall_time"] == -math.inf
    assert pd.isna(edited["peak_rss"]) and edited["error_line"] == "boom"
    assert second["phase"].nunique() >= 3 and second["budget"].nunique() == 2


def test_the_summary_is_deterministic_in_path_order(store):
    store.table()
    text = (store.root / SUMMARY_FILE).read_bytes()
    (store.root / SUMMARY_FILE).unlink()
    store.table()
    assert (store.root / SUMMARY_FILE).read_bytes() == text
    files = [json.loads(line)[0] for line in text.splitlines()[1:]]
    assert files == list(uncached(store)["file"])  # the store's path order (``walk_files``)


def test_a_relative_root_gives_the_same_files(store, monkeypatch):
    monkeypatch.chdir(store.root)
    table, _ = ResultStore(".").table()
    assert list(table["file"]) == list(uncached(ResultStore("."))["file"])
    assert table["file"].str.startswith("runs/").all()


def test_an_edited_file_is_read_again(store):
    store.table()
    path = next(store.runs_dir.rglob("*.json"))
    document = json.loads(path.read_bytes())
    document["score"] = 12345.0
    path.write_text(json.dumps(document, indent=1))
    table, _ = store.table()
    row = table[table["file"] == path.relative_to(store.root).as_posix()].iloc[0]
    assert row["score"] == 12345.0 and row["modified"]
    pd.testing.assert_frame_equal(table, uncached(store), check_exact=True)


def test_a_removed_file_disappears_and_an_invalid_one_is_reported(store):
    before, _ = store.table()
    gone, broken = sorted(store.runs_dir.rglob("*.json"))[:2]
    gone.unlink()
    broken.write_text("{not json")
    table, skipped = store.table()
    assert len(table) == len(before) - 2
    assert gone.relative_to(store.root).as_posix() not in set(table["file"])
    assert [s.path for s in skipped] == [broken] and "not readable as JSON" in skipped[0].reason
    assert [s.reason for s in store.table()[1]] == [s.reason for s in store.scan()[1]]
    summary = (store.root / SUMMARY_FILE).read_text()
    assert gone.name not in summary and broken.name not in summary


@pytest.mark.parametrize("corrupt", [
    "{not json\n",
    "",
    '{"summary_version": 0}\n',
    "truncated",
])
def test_a_corrupt_or_stale_summary_is_rebuilt(store, corrupt):
    expected = uncached(store)
    store.table()
    summary = store.root / SUMMARY_FILE
    lines = summary.read_text().splitlines()
    if corrupt == "truncated":
        summary.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:40] + "\n")
    else:
        summary.write_text(corrupt)
    table, _ = store.table()
    pd.testing.assert_frame_equal(table, expected, check_exact=True)
    assert summary.read_text().splitlines() == lines  # rebuilt whole


def test_a_hostile_row_for_other_bytes_is_not_used(store):
    """A row names the bytes it was made from and the file's stat signature when read: a
    row of another version of the file (another store's summary, an edit) is not used."""
    store.table()
    summary = store.root / SUMMARY_FILE
    header, *rows = summary.read_text().splitlines()
    file, identity, digest, modified, values, signature = json.loads(rows[0])
    score = json.loads(header)["columns"].index("score")
    values[score] = -1.0  # a forged score for the file, under a made-up bytes digest
    rows[0] = json.dumps([file, "0" * 32, digest, modified, values, "1:2:3"])
    summary.write_text("\n".join([header, *rows]) + "\n")
    table, _ = store.table()
    assert table.loc[table["file"] == file, "score"].iloc[0] != -1.0
    pd.testing.assert_frame_equal(table, uncached(store), check_exact=True)


def test_a_file_rewritten_in_place_is_read_again(store):
    """Same path, other bytes: the stat signature changes, so the row is remade."""
    table, _ = store.table()
    file = table["file"].iloc[0]
    path = store.root / file
    document = json.loads(path.read_text())
    document["score"] = 123.0  # no longer the digest's bytes: read as modified
    path.write_text(json.dumps(document))
    again, _ = store.table()
    row = again.loc[again["file"] == file].iloc[0]
    assert row["score"] == 123.0 and bool(row["modified"])
    pd.testing.assert_frame_equal(again, uncached(store), check_exact=True)


def test_an_unchanged_file_is_not_read_again(store, monkeypatch):
    store.table()
    read: list[Path] = []
    original = Path.read_bytes

    def counting(self):
        read.append(self)
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", counting)
    table, _ = store.table()
    assert len(table) and not [p for p in read if p.suffix == ".json"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_store_is_read_without_a_summary(store):
    expected = uncached(store)
    for directory in [store.root, *[p for p in store.root.rglob("*") if p.is_dir()]]:
        directory.chmod(0o555)
    try:
        table, skipped = store.table()
    finally:
        for directory in [store.root, *[p for p in store.root.rglob("*") if p.is_dir()]]:
            directory.chmod(0o755)
    assert not skipped
    pd.testing.assert_frame_equal(table, expected, check_exact=True)
    assert not (store.root / SUMMARY_FILE).exists()


def test_a_summary_that_cannot_be_written_is_no_error(store, monkeypatch):
    """The read-only case where the test runs as root (which may write anywhere)."""
    import suites.results as results

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(results, "atomic_open", refuse)
    table, _ = store.table()
    pd.testing.assert_frame_equal(table, uncached(store), check_exact=True)
    assert not (store.root / SUMMARY_FILE).exists()


def test_an_empty_or_missing_store_writes_nothing(tmp_path):
    table, skipped = ResultStore(tmp_path / "nowhere").table()
    assert table.empty and not skipped and list(table.columns) == list(uncached(
        ResultStore(tmp_path / "nowhere")).columns)
    assert not (tmp_path / "nowhere").exists()
