"""The ``resnetv2`` command line: parse, call library functions, print.

Each sub-command lives in its own module with ``register(subparsers)``; this module only
dispatches and turns user mistakes into one-line messages with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from resnetv2.errors import ResNetV2Error

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS = ["depths", "summary", "train", "evaluate", "plot", "predict", "export", "convert"]


def build_parser() -> argparse.ArgumentParser:
    from resnetv2 import __version__

    parser = argparse.ArgumentParser(
        prog="resnetv2",
        description="Pre-activation ResNets (He et al. 2016) of any depth: build, inspect, "
        "train, evaluate, predict, export.",
    )
    parser.add_argument("--version", action="version", version=f"resnetv2 {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"resnetv2.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ResNetV2Error, FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        print(f"resnetv2 {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"resnetv2 {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `resnetv2 depths | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
