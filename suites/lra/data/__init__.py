"""Data of the LRA suite: loaders for the Long Range Arena release, and generators.

``add_commands(subparsers)`` adds one sub-command per generator to an argparse
sub-parser group (the ``data`` command of ``lsb``; ``python -m suites.lra.data`` runs
them standalone). Each sub-command's ``func(args)`` returns an exit code.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from suites.lra.data.release import ROOT_ENV_VAR, default_root


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "listops", help="generate ListOps in the LRA release layout (listops-1000/*.tsv)"
    )
    p.add_argument("--root", type=Path, default=None,
                   help=f"data root (default: ${ROOT_ENV_VAR} or ./data)")
    p.add_argument("--train", type=int, default=96_000, help="training examples")
    p.add_argument("--val", type=int, default=2_000, help="validation examples")
    p.add_argument("--test", type=int, default=2_000, help="test examples")
    p.add_argument("--max-depth", type=int, default=10)
    p.add_argument("--max-args", type=int, default=10)
    p.add_argument("--min-length", type=int, default=500, help="lengths are strictly above")
    p.add_argument("--max-length", type=int, default=2000, help="lengths are strictly below")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_generate_listops)

    p = subparsers.add_parser(
        "pathfinder",
        help="generate Pathfinder in the LRA release layout (pathfinder32/…/imgs, metadata)",
    )
    p.add_argument("--root", type=Path, default=None,
                   help=f"data root (default: ${ROOT_ENV_VAR} or ./data)")
    p.add_argument("--count", type=int, default=200_000,
                   help="images (the release has 200,000; 80%%/10%%/10%% train/val/test)")
    p.add_argument("--resolution", type=int, default=32, help="image side in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_generate_pathfinder)


def _generate_listops(args: argparse.Namespace) -> int:
    from suites.lra.data import listops

    root = args.root or default_root()
    paths = listops.write_release(
        root,
        {"train": args.train, "val": args.val, "test": args.test},
        seed=args.seed,
        max_depth=args.max_depth,
        max_args=args.max_args,
        min_length=args.min_length,
        max_length=args.max_length,
    )
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0


def _generate_pathfinder(args: argparse.Namespace) -> int:
    from suites.lra.data import pathfinder

    # Path-X is Pathfinder's picture at a larger size: every length scales with it.
    settings = pathfinder.PathfinderSettings().magnified(args.resolution)
    directory = pathfinder.write_release(
        args.root or default_root(), args.count, settings, seed=args.seed
    )
    print(f"{args.count} images: {directory}")
    return 0
