"""``python -m suites.lra.data <generator> …``: the data sub-commands without ``lsb``."""

import argparse
import sys

from suites.lra.data import add_commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suites.lra.data", description=__doc__)
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
