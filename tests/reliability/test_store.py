"""Attacks on the results store: two sweeps racing on one run, temporaries of killed
writes, a directory where a run file belongs, and results directories that cannot be
written (a file, a read-only directory, /proc, an uncreatable path)."""

from __future__ import annotations

import errno
import multiprocessing
import os
import time
from pathlib import Path

import pytest
from reliability_data import result

from suites.results import ResultStore, RunBusy, StoreError


def make_run_once(root: str, log: str, started, outcomes) -> None:
    """What a sweep does with ``ResultStore.claim``: the run is made only when no other
    process has saved it. Appends a line to ``log`` for each run it makes."""
    store = ResultStore(root)
    run = result()
    started.wait()
    with store.claim(run.spec) as existing:
        if existing is not None:
            outcomes.put("reused")
            return
        with open(log, "a") as file:
            file.write(f"{os.getpid()}\n")
        time.sleep(0.5)  # long enough for the others to be waiting on the lock
        store.save(run)
        outcomes.put("made")


def test_three_processes_racing_on_one_run_make_it_once(tmp_path):
    log = tmp_path / "made.log"
    context = multiprocessing.get_context("fork")
    started, outcomes = context.Barrier(3), context.Queue()
    sweeps = [context.Process(target=make_run_once,
                              args=(str(tmp_path), str(log), started, outcomes))
              for _ in range(3)]
    for process in sweeps:
        process.start()
    for process in sweeps:
        process.join(30)
    assert [p.exitcode for p in sweeps] == [0, 0, 0]
    assert sorted(outcomes.get(timeout=5) for _ in sweeps) == ["made", "reused", "reused"]
    assert len(log.read_text().splitlines()) == 1
    store = ResultStore(tmp_path)
    assert store.load(result().spec).score == result().score
    assert not list(tmp_path.rglob("*.lock"))  # released and removed


def test_a_held_claim_makes_a_non_waiting_claim_busy(tmp_path):
    store = ResultStore(tmp_path)
    spec = result().spec
    context = multiprocessing.get_context("fork")
    holding, done = context.Event(), context.Event()

    def hold() -> None:
        with store.claim(spec):
            holding.set()
            done.wait(10)

    holder = context.Process(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        with pytest.raises(RunBusy, match="another process is making this run"):
            with store.claim(spec, timeout=0):
                pass
    finally:
        done.set()
        holder.join(10)
    with store.claim(spec, timeout=5) as existing:
        assert existing is None
    assert not list(tmp_path.rglob("*.lock"))


def test_a_claim_yields_the_stored_result(tmp_path):
    store = ResultStore(tmp_path)
    run = result()
    store.save(run)
    with store.claim(run.spec) as existing:
        assert existing is not None and existing.spec == run.spec


def test_stale_temporaries_are_removed_and_fresh_ones_kept(tmp_path):
    store = ResultStore(tmp_path)
    path = store.save(result())
    old = path.with_name(f".{path.name}.k1ll3d.tmp")
    fresh = path.with_name(f".{path.name}.wr1t1ng.tmp")
    other = path.with_name("notes.tmp")  # not one of atomic_open's
    for file in (old, fresh, other):
        file.write_text('{"schema_version": 1, "task"')
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    os.utime(other, (hour_ago, hour_ago))
    assert store.remove_stale_temporaries(older_than=600) == [old]
    assert not old.exists() and fresh.exists() and other.exists() and path.exists()


def test_a_directory_where_a_run_file_belongs_is_a_store_error(tmp_path):
    store = ResultStore(tmp_path)
    run = result()
    blocker = store.path_for(run.spec)
    blocker.mkdir(parents=True)
    for action in (lambda: store.load(run.spec), lambda: store.save(run)):
        with pytest.raises(StoreError, match="is a directory where a run file belongs; "
                                             "remove it") as caught:
            action()
        assert str(blocker) in str(caught.value)
    with pytest.raises(StoreError):
        with store.claim(run.spec):
            pass


def test_a_writable_results_directory_passes_the_check(tmp_path):
    store = ResultStore(tmp_path / "new" / "results")
    store.check_writable()
    assert store.runs_dir.is_dir() and not list(store.runs_dir.iterdir())


@pytest.mark.parametrize("case", ["a file", "under a file", "/proc", "/sys"])
def test_an_unwritable_results_directory_fails_the_check(tmp_path, case):
    (tmp_path / "file").write_text("not a directory")
    root = {"a file": tmp_path / "file", "under a file": tmp_path / "file" / "results",
            "/proc": Path("/proc"), "/sys": Path("/sys")}[case]
    with pytest.raises(StoreError, match="--results DIR") as caught:
        ResultStore(root).check_writable()
    assert str(root) in str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_results_directory_fails_the_check(tmp_path):
    root = tmp_path / "results"
    root.mkdir()
    root.chmod(0o555)
    try:
        with pytest.raises(StoreError, match="a directory you can write to"):
            ResultStore(root).check_writable()
    finally:
        root.chmod(0o755)


def test_a_read_only_mount_fails_the_check(tmp_path, monkeypatch):
    """A read-only file system, as the kernel reports it (root writes into read-only
    directories, so the refusal is simulated where it would come from)."""
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr("suites.results.tempfile.mkstemp", read_only)
    with pytest.raises(StoreError, match="Read-only file system; pass --results DIR naming a "
                                         "directory you can write to"):
        ResultStore(tmp_path / "results").check_writable()


def test_a_rescan_reads_a_changed_file_again_and_never_caches_a_broken_one(tmp_path):
    store = ResultStore(tmp_path)
    path = store.save(result())
    (first,), _ = store.scan()
    (again,), _ = store.scan()
    assert again.result is first.result  # the same bytes: parsed once
    assert not first.modified
    text = path.read_text()
    path.write_text(text.replace('"status": "ok"', '"status": "diverged"', 1))
    (changed,), _ = store.scan()
    assert changed.result.status == "diverged" and first.result.status == "ok"
    assert changed.modified  # edited after the driver wrote it: the digest no longer matches
    path.write_text(text[: len(text) // 2])  # a truncated file
    for _ in range(2):
        records, skipped = store.scan()
        assert records == [] and "not readable as JSON" in skipped[0].reason
