"""The command line's shared vocabulary: one spelling per idea, defined once.

Every command that runs a model takes ``--device`` (default ``auto``); every long command takes
``-q/--quiet`` and ``--progress/--no-progress`` (bars only when stderr is a terminal, so piped
or logged output is whole lines without ``\\r``); image size is always ``--input-size``. An
unknown flag is answered with the closest valid one, including the spellings other tools use
(``--model`` → ``--preset``/``--depth``, ``--num-classes`` → ``--classes``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable

from resnetv2.device import DEVICE_HELP
from resnetv2.errors import suggest

#: Flags other tools (timm, torchvision, Keras scripts) use for what resnetv2 calls otherwise.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "--model": ("--preset", "--depth"),
    "--arch": ("--preset", "--depth"),
    "--architecture": ("--preset", "--depth"),
    "--num-classes": ("--classes",),
    "--n-classes": ("--classes",),
    "--nb-classes": ("--classes",),
    "--image-size": ("--input-size",),
    "--img-size": ("--input-size",),
    "--resolution": ("--input-size",),
    "--size": ("--input-size",),
    "--gpu": ("--device",),
    "--cuda": ("--device",),
    "--silent": ("--quiet",),
    "--no-progress-bar": ("--no-progress",),
    "--learning-rate": ("--lr",),
    "--bs": ("--batch-size",),
    "--output": ("--out",),
    "--output-dir": ("--out",),
    "--pretrained": ("--init-weights",),
    "--weights": ("--init-weights",),
}


def is_main_process() -> bool:
    """Whether this process prints: rank 0 of a ``torchrun`` launch, or a single process."""
    return os.environ.get("RANK", "0") == "0"


def add_device_argument(parser: argparse.ArgumentParser, *, dest: str = "device") -> None:
    """``--device`` with the one default (``auto``) and the one help text."""
    parser.add_argument(
        "--device", dest=dest, default="auto", metavar="DEVICE", help=f"{DEVICE_HELP} (auto)"
    )


def add_progress_arguments(parser: argparse.ArgumentParser) -> None:
    """``-q/--quiet`` and ``--progress/--no-progress`` (see :func:`show_progress`)."""
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars, summaries only"
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars (default: only when stderr is a terminal)",
    )


def show_progress(args: argparse.Namespace) -> bool:
    """Whether to draw progress bars: never with ``--quiet``, as asked with ``--progress`` /
    ``--no-progress``, else only on a terminal (a bar redraws with ``\\r``; in a pipe or a log
    file that is noise)."""
    if getattr(args, "quiet", False):
        return False
    if getattr(args, "progress", None) is not None:
        return bool(args.progress)
    return sys.stderr.isatty()


def input_size(text: str) -> tuple[int, int]:
    """``--input-size`` as ``(height, width)``: ``N`` (square) or ``HxW`` (argparse type)."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected N or HxW with positive integers (32, 224x160), got {text[:40]!r}"
        )
    from resnetv2.data.load import check_image_size

    size = (values[0], values[-1])
    try:  # the rule a config's or a weights file's size meets too, in the flag's error line
        check_image_size(size)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("image_size ", "", 1)) from None
    return size


def add_input_size_argument(
    parser: argparse.ArgumentParser, default_help: str, *, dest: str = "input_size"
) -> None:
    """``--input-size N`` (square) or ``--input-size HxW``: the one image-size flag."""
    parser.add_argument(
        "--input-size",
        dest=dest,
        type=input_size,
        default=None,
        metavar="N|HxW",
        help=f"input size, N for N×N or HxW ({default_help})",
    )


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every ``--flag`` a parser accepts."""
    return sorted({s for a in parser._actions for s in a.option_strings if s.startswith("--")})


def unknown_flag_message(unknown: Iterable[str], valid: list[str]) -> str:
    """``unrecognized argument --model (did you mean --preset or --depth?)``, one line."""
    flags = [u for u in unknown if u.startswith("-")]
    if not flags:
        return f"unrecognized arguments: {' '.join(unknown)}"
    parts = []
    for flag in flags:
        name = flag.split("=", 1)[0]
        known = [s for s in SYNONYMS.get(name, ()) if s in valid]
        hint = f" (did you mean {' or '.join(known)}?)" if known else suggest(name, valid)
        parts.append(f"{name}{hint.replace(chr(39), '')}")
    noun = "argument" if len(parts) == 1 else "arguments"
    return f"unrecognized {noun} " + ", ".join(parts)
