"""The ``lsb`` command line."""

from __future__ import annotations

import argparse
import platform
import sys

from suites import __version__


def _cmd_doctor(args: argparse.Namespace) -> int:
    import torch

    from kernels.scan import resolve_backend

    print(f"lsb          {__version__}")
    print(f"python       {platform.python_version()} ({platform.machine()})")
    print(f"torch        {torch.__version__}")
    try:
        import triton

        print(f"triton       {triton.__version__}")
    except ImportError:
        print("triton       not installed (the Triton backends are unavailable)")
    cuda = torch.cuda.is_available()
    print(f"cuda         {'yes: ' + torch.cuda.get_device_name(0) if cuda else 'no'}")
    for dev in ["cpu"] + (["cuda"] if cuda else []):
        print(f"scan auto    {dev}: {resolve_backend('auto', torch.device(dev))}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from kernels.scan.demo import main as scan_demo

    return scan_demo()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lsb",
        description="LandscapeBench: optimizers on challenging landscapes, and their kernels.",
    )
    parser.add_argument("--version", action="version", version=f"lsb {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("doctor", help="print versions, CUDA availability and kernel backends")
    p.set_defaults(func=_cmd_doctor)
    p = sub.add_parser("demo", help="run the quick demo")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
