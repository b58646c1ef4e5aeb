"""Attacks on ``lsb site build``: it deletes nothing it does not own and publishes no file
it was not meant to (symbolic links, oversized files, absolute local paths)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from reliability_data import html_pages, result, sweep

from suites import sitegen
from suites.cli import main
from suites.results import MAX_FILE_BYTES, ResultStore
from suites.sitegen import SITE_MARKER, SiteError, build_site


@pytest.fixture
def results(tmp_path) -> Path:
    root = tmp_path / "results"
    store = ResultStore(root)
    for optimizer in ("sgd", "adam"):
        sweep(store, "chain/depth-4-const", optimizer, score=10.0 if optimizer == "sgd" else 5.0)
    return root


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def build_command(results: Path, out: Path | str, capsys) -> tuple[int, str]:
    code = main(["site", "build", "--results", str(results), "--out", str(out)])
    return code, capsys.readouterr().err


# --------------------------------------------------------------------------- --out


def test_a_directory_holding_a_user_file_is_refused(results, tmp_path, capsys):
    out = tmp_path / "mydocs"
    out.mkdir()
    (out / "thesis.tex").write_text("two years of work")
    code, err = build_command(results, out, capsys)
    assert code == 2
    assert "is not empty and is not a site" in err and SITE_MARKER in err
    assert "name a new or empty directory" in err
    assert files_under(out) == {"thesis.tex": b"two years of work"}


@pytest.mark.parametrize("where", ["results itself", "inside results", "results inside it"])
def test_an_out_overlapping_the_results_is_refused(results, tmp_path, capsys, where):
    out = {"results itself": results, "inside results": results / "runs" / "site",
           "results inside it": tmp_path}[where]
    before = files_under(results)
    code, err = build_command(results, out, capsys)
    assert code == 2 and "overlaps the results directory" in err
    assert files_under(results) == before
    assert not (results / "runs" / "site").exists()


def test_a_regular_file_as_out_is_refused(results, tmp_path, capsys):
    out = tmp_path / "index.html"
    out.write_text("hand-written page")
    code, err = build_command(results, out, capsys)
    assert code == 2 and "is a file" in err
    assert out.read_text() == "hand-written page"


def test_out_dot_in_a_user_directory_is_refused_and_leaves_nothing(results, tmp_path, capsys,
                                                                     monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.md").write_text("mine")
    monkeypatch.chdir(work)
    code, err = build_command(results, ".", capsys)
    assert code == 2 and "is not empty" in err
    assert sorted(p.name for p in work.iterdir()) == ["notes.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "work"]


def test_out_dot_in_a_site_rebuilds_in_place_without_leftovers(results, tmp_path, capsys,
                                                                monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.chdir(site)
    for _ in range(2):
        code, _ = build_command(results, ".", capsys)
        assert code == 0
    assert Path.cwd() == site and (site / "index.html").is_file()
    assert (site / SITE_MARKER).is_file()
    assert not [p for p in tmp_path.rglob("*")
                if p.name.startswith((".lsb-staging", ".lsb-old", ".."))]


def test_a_site_made_by_the_build_is_replaced(results, tmp_path):
    out = tmp_path / "site"
    build_site(results, out)
    (out / "stale.html").write_text("from an older build")
    build_site(results, out)
    assert not (out / "stale.html").exists() and (out / "index.html").is_file()


def test_a_missing_results_directory_is_refused_and_the_site_kept(results, tmp_path, capsys):
    out = tmp_path / "site"
    build_site(results, out)
    before = files_under(out)
    code, err = build_command(tmp_path / "typo", out, capsys)
    assert code == 2 and "does not exist" in err and "--results" in err
    assert files_under(out) == before


def test_a_failed_build_leaves_no_staging_and_creates_no_out(results, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sitegen.pages, "submit_page", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        build_site(results, tmp_path / "new-site")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_site_error_is_a_value_error_raised_before_writing(results, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "a").write_text("x")
    with pytest.raises(SiteError) as caught:
        sitegen.check_destination(results, tmp_path / "taken")
    assert isinstance(caught.value, ValueError)


# --------------------------------------------------------------------------- what is published


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "outside" / "shadow"
    path.parent.mkdir()
    path.write_text("root:$6$SECRET-HASH:19000:0:99999:7:::\n")
    return path


def test_symbolic_links_are_skipped_listed_and_not_copied(results, tmp_path, secret):
    runs = results / "runs" / "chain"
    (runs / "leak.json").symlink_to(secret)
    outside_runs = tmp_path / "outside" / "runs"
    outside_runs.mkdir()
    ResultStore(tmp_path / "outside").save(result("chain/depth-4-const", "evil"))
    (runs / "linked-dir").symlink_to(outside_runs, target_is_directory=True)
    (results / "kernels").mkdir()
    (results / "kernels" / "bench.json").symlink_to(secret)

    out = tmp_path / "site"
    build_site(results, out)
    everything = b"".join(files_under(out).values())
    assert b"SECRET-HASH" not in everything
    assert not [p for p in out.rglob("*") if p.is_symlink()]
    raw = {p.relative_to(out / "raw").as_posix() for p in (out / "raw").rglob("*.json")}
    assert not {"runs/chain/leak.json", "kernels/bench.json"} & raw
    assert not [f for f in raw if "linked-dir" in f]
    index = (out / "index.html").read_text()
    for listed in ("runs/chain/leak.json", "runs/chain/linked-dir", "kernels/bench.json"):
        assert f"<td><code>{listed}</code></td><td>a symbolic link" in index
    assert "evil" not in index


def test_an_oversized_file_is_listed_not_copied(results, tmp_path):
    junk = results / "runs" / "chain" / "junk.json"
    with junk.open("wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)
    out = tmp_path / "site"
    build_site(results, out)
    assert not (out / "raw" / "runs" / "chain" / "junk.json").exists()
    index = (out / "index.html").read_text()
    assert f"<td><code>runs/chain/junk.json</code></td><td>{MAX_FILE_BYTES + 1} bytes" in index
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) < MAX_FILE_BYTES


def test_no_page_shows_an_absolute_local_path(tmp_path):
    root = tmp_path / "results"
    store = ResultStore(root)
    submission = tmp_path / "home" / "alice" / "private" / "lion.py"
    sweep(store, "chain/depth-4-const", "lion", path=str(submission))
    sweep(store, "chain/depth-4-const", "sgd", path="/home/alice/.cache/sgd.py", score=20.0)
    (root / "runs" / "chain" / "unreadable.json").mkdir()  # a directory named like a file
    (root / "runs" / "chain" / "bad.json").write_text('{"schema_version": 1}')
    (root / "kernels").mkdir()
    (root / "kernels" / "truncated.json").write_text('{"benchmarks": [')
    out = tmp_path / "site"
    build_site(root, out)
    pages = {p.relative_to(out).as_posix(): p.read_text() for p in html_pages(out)}
    assert "optimizer/lion.html" in pages
    for name, text in pages.items():
        assert str(tmp_path) not in text and "/home/alice" not in text, name
        assert os.path.realpath(tmp_path) not in text, name
    assert "<code>lion.py</code>" in pages["optimizer/lion.html"]
    assert "<code>runs/chain/bad.json</code>" in pages["index.html"]


def test_a_recorded_path_without_a_file_name_builds(tmp_path):
    from suites import registry
    from suites.submission import source_hash

    builtin = registry.builtin_optimizer_paths()["sgd"]
    root = tmp_path / "results"
    sweep(ResultStore(root), "chain/depth-4-const", "sgd", path="/srv/..",
          source_hash=source_hash(builtin))
    out = tmp_path / "site"
    build_site(root, out)
    page = (out / "optimizer" / "sgd.html").read_text()
    assert "<code>(unknown)</code>" in page and "/srv" not in page
    assert (out / "raw" / "optimizers" / "sgd" / "(unknown)").read_bytes() == \
        builtin.read_bytes()


def test_a_fifo_is_listed_never_opened(results, tmp_path):
    os.mkfifo(results / "runs" / "chain" / "pipe.json")  # opening it would block the build
    index = build_site(results, tmp_path / "site").read_text()
    assert "<td><code>runs/chain/pipe.json</code></td><td>not a regular file" in index
