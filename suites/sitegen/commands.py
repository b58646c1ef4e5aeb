"""``lsb site build`` and ``lsb site serve``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from suites.api import BUDGET_NAMES
from suites.sitegen.serve import DEFAULT_OUT, serve


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``lsb site build`` and ``lsb site serve`` on the CLI's subparsers."""
    site = subparsers.add_parser("site", help="build or serve the static leaderboard site")
    actions = site.add_subparsers(dest="site_command", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="render the site from a results directory")
    build.add_argument("--results", default=None, metavar="DIR",
                       help="results directory (default: $LSB_RESULTS or ./results)")
    build.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                       help=f"where to write the site (default: {DEFAULT_OUT})")
    build.add_argument("--budget", choices=BUDGET_NAMES, default=None,
                       help="the budget the site reports (default: the largest with "
                            "evaluation runs)")
    build.add_argument("--raw-url", default=None, metavar="URL",
                       help="where the results directory is published: the site links run "
                            "and benchmark files there instead of copying them into raw/")
    build.set_defaults(func=_cmd_build)
    serve_parser = actions.add_parser("serve", help="serve a built site on localhost")
    serve_parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve_parser.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                              help=f"the built site (default: {DEFAULT_OUT})")
    serve_parser.set_defaults(func=_cmd_serve)


def _cmd_build(args: argparse.Namespace) -> int:
    from suites.results import default_root
    from suites.sitegen.build import SiteError, build_site

    results = Path(args.results) if args.results else default_root()
    try:
        index = build_site(results, args.out, budget=args.budget, raw_url=args.raw_url)
    except SiteError as err:
        print(f"lsb: error: {err}", file=sys.stderr)
        return 2
    print(f"site: open file://{index.resolve()}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    index = Path(args.out) / "index.html"
    if not index.is_file():
        print(f"lsb: error: no site in {args.out}/: run `lsb site build` first")
        return 2
    print(f"serving {args.out}/ at http://127.0.0.1:{args.port}/ (Ctrl-C stops)")
    serve(args.out, args.port)
    return 0
