"""``suites.atomic``: a file appears whole or not at all."""

from __future__ import annotations

import pytest

from suites.atomic import atomic_open


def test_the_file_appears_on_a_clean_exit_and_replaces_the_old_one(tmp_path):
    path = tmp_path / "deep" / "a.json"
    with atomic_open(path) as f:
        f.write("first")
        assert not path.exists()  # nothing visible until the rename
    with atomic_open(path, "wb") as f:
        f.write(b"second")
    assert path.read_text() == "second"
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_an_error_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(path) as f:
        f.write("half")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(path, "a"):
            pass
