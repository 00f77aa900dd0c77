"""The ``amsnet`` command line: one small module per sub-command, each ``run(args) -> int``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from amsnet.cli import (
    bench,
    convert,
    demo,
    denoise,
    distill,
    evaluate,
    export,
    finetune,
    info,
    models,
    nets,
    serve,
    submit,
    train,
)
from amsnet.errors import AmsnetError
from amsnet.version import __version__

COMMANDS = (
    denoise,
    serve,
    models,
    demo,
    nets,
    convert,
    info,
    evaluate,
    submit,
    train,
    finetune,
    distill,
    export,
    bench,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amsnet",
        description="Self-supervised real-image denoising (AMSNet, AP-BSN).",
    )
    parser.add_argument("--version", action="version", version=f"amsnet {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 success, 1 failure, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except AmsnetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as error:
        # A file system refusal (read-only folder, full disk, a file where a folder belongs)
        # is the user's to fix: name the file and the cause, not a traceback.
        print(f"error: {describe_os_error(error)}", file=sys.stderr)
        return 1


def describe_os_error(error: OSError) -> str:
    """``error`` as one line naming the file, the cause and, where there is one, the fix."""
    import errno

    where = error.filename if error.filename is not None else "a file"
    cause = error.strerror or str(error)
    hints = {
        errno.ENOSPC: "free some space and run the command again (training: add --resume)",
        errno.EROFS: "the file system is read-only; choose an output on a writable one",
        errno.EACCES: "check the permissions or choose another path",
        errno.EPERM: "check the permissions or choose another path",
        errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
        errno.EISDIR: "it is a folder; give a file name",
    }
    hint = hints.get(error.errno)
    return f"{where}: {cause}" + (f"; {hint}" if hint else "")
