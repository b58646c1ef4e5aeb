"""``bench.synthetic_store``: a store of N distinct, valid runs made from the committed one."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.synthetic_store import main, make_store
from suites.results import ResultStore

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "results"


def tiny_source(tmp_path: Path, files: int = 12) -> Path:
    """A store of the first ``files`` committed runs, with the kept optimizer sources."""
    source = tmp_path / "source"
    runs = sorted((COMMITTED / "runs").rglob("*.json"))[:files]
    for path in runs:
        target = source / path.relative_to(COMMITTED)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    shutil.copytree(COMMITTED / "optimizers", source / "optimizers")
    return source


def test_fifty_runs_are_valid_distinct_and_unmodified(tmp_path):
    source = tiny_source(tmp_path)
    out = tmp_path / "store"
    assert make_store(source, out, 50) == 50
    runs, skipped = ResultStore(out).scan()
    assert not skipped
    assert len(runs) == 50
    assert len({r.result.key for r in runs}) == 50
    assert not any(r.modified for r in runs)  # the digests were remade
    assert all(r.path.stem == r.result.key for r in runs)  # each at its run key's path
    # Each copy is a source run but for its seed.
    def but_seed(stored):
        return stored.result.spec.model_copy(update={"seed": 0}).model_dump_json()

    sources = {but_seed(r) for r in ResultStore(source).scan()[0]}
    assert {but_seed(r) for r in runs} == sources
    assert (out / "optimizers").is_dir()
    table, _ = ResultStore(out).table()
    assert len(table) == 50 and set(table["phase"]) <= {"tune", "eval", "sensitivity",
                                                         "held_out"}
    assert ((table["seed"] >= 1000) == (table["phase"].isin(["eval", "held_out"]))).all()


def test_the_output_is_deterministic_and_a_prefix_below_the_source_size(tmp_path):
    source = tiny_source(tmp_path)
    for name in ("a", "b"):
        assert main(["--out", str(tmp_path / name), "--runs", "30",
                     "--source", str(source)]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*")
                   if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*")
                           if p.is_file())
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
               for f in files)
    make_store(source, tmp_path / "few", 5)
    assert len(list((tmp_path / "few" / "runs").rglob("*.json"))) == 5
