"""The static leaderboard site: ``build_site(results_dir, out_dir)`` and ``lsb site``.

- ``build``: the build itself (staging directory, swap into place, raw files);
- ``pages``: one function per kind of page, laying out ``suites.site_data``'s numbers;
- ``plots``: matplotlib figures as inline SVG;
- ``format``: names → file names, colours, the templates' number filters;
- ``serve`` and ``commands``: ``lsb site serve`` and the ``lsb site`` subcommands.

The names below are imported from their modules when first used: registering the ``lsb
site`` commands must not import matplotlib and the pages (seconds of every ``lsb`` call).
"""

from __future__ import annotations

import importlib
from typing import Any

#: Each public name and the module of this package that defines it.
_EXPORTS = {
    "SITE_MARKER": "build", "SiteError": "build", "build_site": "build",
    "check_destination": "build", "add_commands": "commands", "Slugs": "format",
    "docstring_markup": "format", "fmt_percent": "format", "fmt_score": "format",
    "optimizer_colours": "format", "EXAMPLE_SUBMISSION": "pages", "DEFAULT_OUT": "serve",
    "make_server": "serve",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
