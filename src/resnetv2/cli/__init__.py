"""The ``resnetv2`` command line: parse, call library functions, print.

Each sub-command lives in its own module with ``register(subparsers)``; this module only
dispatches and turns user mistakes into one-line messages with exit code 2.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import warnings

from resnetv2.errors import ResNetV2Error

#: Sub-command modules, in the order ``--help`` lists them.
COMMANDS = [
    "depths",
    "summary",
    "train",
    "compare",
    "evaluate",
    "plot",
    "report",
    "predict",
    "export",
    "convert",
]


class OneLineParser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (plus where to look), exit code 2.

    argparse prints the whole usage block before the message; with thirty options that
    pushes the one line that matters off the screen. Sub-command parsers inherit the class.
    """

    def error(self, message: str):  # noqa: D401 - argparse's signature
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")

    def parse_args(self, args=None, namespace=None):
        """argparse's, but an unknown flag is answered with the closest valid one of the
        sub-command it was given to (``--model`` → ``--preset`` or ``--depth``)."""
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            from resnetv2.cli.common import option_strings, unknown_flag_message

            commands = getattr(self, "commands", {})
            target = commands.get(getattr(namespace, "command", None), self)
            target.error(unknown_flag_message(extras, option_strings(target)))
        return namespace


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with ``command`` (a sub-command's name) only that
    sub-command: a command parses its own flags only, and importing the other modules costs
    start-up time that a short ``predict`` would notice."""
    from resnetv2._version import __version__

    parser = OneLineParser(
        prog="resnetv2",
        description="Pre-activation ResNets (He et al. 2016) of any depth: build, inspect, "
        "train, evaluate, predict, export.",
    )
    parser.add_argument("--version", action="version", version=f"resnetv2 {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in [command] if command in COMMANDS else COMMANDS:
        importlib.import_module(f"resnetv2.cli.{name}").register(sub)
    parser.commands = sub.choices  # for parse_args' "did you mean" on unknown flags
    return parser


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings as one line (``warning: …``): the default format adds the file, line and a
    source excerpt, which reads like a traceback to someone who made no mistake."""
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    warnings.formatwarning = _format_warning
    given = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(given[0] if given else None)
    args = parser.parse_args(given)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe is met here, not at exit (where it cannot be caught)
        return code
    except BrokenPipeError:  # `resnetv2 compare … --json | head`: the reader has all it wants
        _silence_stdout()
        return 0
    except (ResNetV2Error, FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        print(f"resnetv2 {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(
            f"resnetv2 {args.command}: error: out of memory; use a smaller model, batch or "
            "image size",
            file=sys.stderr,
        )
        return 2
    except OSError as exc:
        if exc.errno not in USER_ERRNOS:
            raise
        # Read-only, full or missing output locations are the user's to fix, not a bug.
        print(f"resnetv2 {args.command}: error: {_describe_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"resnetv2 {args.command}: interrupted", file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    """Point stdout at the null device, so the interpreter's final flush of what is still
    buffered meets no closed pipe ("Exception ignored … BrokenPipeError", exit 120)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout replaced by an object without a descriptor
        pass


USER_ERRNOS = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EEXIST,
        errno.ENAMETOOLONG,
        errno.ELOOP,
    }
)
"""``OSError`` numbers that describe the user's files (permissions, full disk, missing or
wrong kind of path) and become a one-line exit 2; any other ``OSError`` is a bug and keeps
its traceback."""


def _describe_os_error(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    path = exc.filename
    if path is None:
        return _one_line(exc)
    return f"{os.fsdecode(path)}: {reason}"


def _one_line(exc: BaseException) -> str:
    """``exc``'s message on one line (a CLI error is one line; nothing is dropped)."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
