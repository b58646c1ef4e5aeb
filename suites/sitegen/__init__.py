"""The static leaderboard site: ``build_site(results_dir, out_dir)`` and ``lsb site``.

- ``build``: the build itself (staging directory, swap into place, raw files);
- ``pages``: one function per kind of page, laying out ``suites.site_data``'s numbers;
- ``plots``: matplotlib figures as inline SVG;
- ``format``: names → file names, colours, the templates' number filters;
- ``serve`` and ``commands``: ``lsb site serve`` and the ``lsb site`` subcommands.
"""

from suites.sitegen.build import SITE_MARKER, SiteError, build_site, check_destination
from suites.sitegen.commands import add_commands
from suites.sitegen.format import (
    Slugs,
    docstring_markup,
    fmt_percent,
    fmt_score,
    optimizer_colours,
)
from suites.sitegen.pages import EXAMPLE_SUBMISSION
from suites.sitegen.serve import DEFAULT_OUT, make_server, serve

__all__ = [
    "DEFAULT_OUT", "EXAMPLE_SUBMISSION", "SITE_MARKER", "SiteError", "Slugs", "add_commands",
    "build_site", "check_destination",
    "docstring_markup", "fmt_percent", "fmt_score", "make_server", "optimizer_colours", "serve",
]
