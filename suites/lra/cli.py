"""What the LRA suite adds to the ``lsb`` command: where its data are, and ``lsb data``.

``--data-dir`` (the generated-data cache) and ``--lra-root`` (the LRA release) become
environment variables, so that every worker process, local or on a cluster, reads the
same directories.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from suites.lra import data
from suites.lra.data.release import CACHE_ENV_VAR, ROOT_ENV_VAR


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help=f"where generated data sets are cached (sets ${CACHE_ENV_VAR}; "
                             "default ~/.cache/lsb)")
    parser.add_argument("--lra-root", default=None, metavar="DIR",
                        help=f"where the LRA release's files are (sets ${ROOT_ENV_VAR}; "
                             "default ./data)")


def apply_options(args: argparse.Namespace) -> None:
    for value, variable in ((args.data_dir, CACHE_ENV_VAR), (args.lra_root, ROOT_ENV_VAR)):
        if value:
            os.environ[variable] = str(Path(value).resolve())


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="generate LRA data sets in the official "
                                                "release layout")
    data.add_commands(parser.add_subparsers(dest="dataset", metavar="DATASET", required=True))
