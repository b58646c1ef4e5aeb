"""Session fixtures of the site tests: the fixture results directory and its site."""

from __future__ import annotations

from pathlib import Path

import pytest
from site_fixture import write_fixture


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory) -> Path:
    return write_fixture(tmp_path_factory.mktemp("fixture") / "results")


@pytest.fixture(scope="session")
def built_site(results_dir, tmp_path_factory) -> Path:
    """The site built once from the fixture; returns its directory."""
    from suites.sitegen import build_site

    out = tmp_path_factory.mktemp("site") / "build"
    build_site(results_dir, out)
    return out
