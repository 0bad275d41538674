"""``resnetv2 train --depth 20,56,110``: one run per depth, same recipe and seed, then compare.

The tutorial's question — which depth should I build for my data? — is answered by training
the candidates under identical conditions and reading one table. Every depth gets its own
run folder (``depth-20``, ``depth-56``, ...) inside one parent folder, so the sweep can be
compared again later (``resnetv2 compare PARENT``) and each run evaluated, resumed or
exported like any other. All configs are built first, so a depth that cannot be built fails
before any training starts.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from resnetv2.cli.common import is_main_process
from resnetv2.cli.spec_args import int_list


def depth_list(text: str) -> int | list[int]:
    """``--depth`` for train: one depth (an int) or a comma list to sweep."""
    values = int_list(text)
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"each depth once, please: {text!r}")
    return values[0] if len(values) == 1 else values


def accept_depth_list(parser: argparse.ArgumentParser) -> None:
    """Let the shared ``--depth`` flag of ``train`` take a list (20,56,110)."""
    for action in parser._actions:  # the flag is defined by add_spec_arguments
        if action.dest == "depth":
            action.type = depth_list
            action.metavar = "D[,D...]"
            action.help = (
                "any valid depth (see `resnetv2 depths`); a comma list (20,56,110) trains one "
                "run per depth with the same recipe and seed into one folder and compares them"
            )


def run_sweep(
    args: argparse.Namespace,
    train_one: Callable[[argparse.Namespace], int],
    build_config: Callable[[argparse.Namespace], Any],
) -> int:
    """Train ``args.depth`` (a list) one after another, then print the comparison.

    ``train_one`` trains one depth's arguments and ``build_config`` turns them into a config
    (both from :mod:`resnetv2.cli.train`, which calls this: passing them keeps the import
    one-way)."""
    from resnetv2.compare import compare_runs, format_table
    from resnetv2.engine.runfolder import RunFolderError, new_run_dir
    from resnetv2.errors import ResNetV2Error

    if args.resume:
        raise ResNetV2Error("--resume continues one run; give a single --depth with it")
    children = []
    for depth in args.depth:
        child = copy.copy(args)
        child.depth = depth
        children.append((depth, child, build_config(child)))  # all checked before training
    if args.out is not None:
        parent = Path(args.out)
        if parent.exists() and (not parent.is_dir() or any(parent.iterdir())):
            raise RunFolderError(f"sweep folder {parent} already exists and is not empty")
    created = args.out is None or not Path(args.out).exists()
    parent = new_run_dir(args.out, f"sweep-{children[0][2].name}")
    code = 1
    try:
        for depth, child, _ in children:
            child.out = str(parent / f"depth-{depth}")
            if is_main_process():
                print(f"== depth {depth} -> {child.out}", flush=True)
            code = train_one(child)
            if code:
                print(f"resnetv2 train: depth {depth} ended with exit code {code}", file=sys.stderr)
                break
    finally:
        # A first start that failed leaves its sweep folder empty (its own folder is removed):
        # remove that too, as a single run's failed start does; never a folder the user made.
        if created and code and not any(parent.iterdir()):
            parent.rmdir()
    if code and not parent.exists():
        return code
    if is_main_process():
        print()
        print(format_table(compare_runs([parent])))
        print(f"sweep folder: {parent} (compare again with `resnetv2 compare {parent}`)")
    return code
