"""Command-line options that several subcommands take in the same form."""

from __future__ import annotations

import argparse

from amsnet.config import PRECISIONS

PRECISION_HELP = "auto (bf16 where the CPU or GPU has it natively and it pays), fp32, bf16 or fp16"


def add_precision_argument(
    parser: argparse.ArgumentParser,
    *,
    default: str | list[str] | None = "auto",
    help: str = PRECISION_HELP,
    many: bool = False,
) -> None:
    """``--precision``: the backbone's precision (:mod:`amsnet.precision`), case-insensitive;
    ``many`` takes several (measured side by side)."""
    parser.add_argument(
        "--precision",
        nargs="+" if many else None,
        default=default,
        type=str.lower,
        choices=PRECISIONS,
        help=help,
    )


def add_overrides_argument(parser: argparse.ArgumentParser, *, example: str) -> None:
    """``--set KEY=VALUE ...``: overrides of an experiment's settings, gathered into
    ``args.overrides`` (repeatable); ``example`` completes the help."""
    parser.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="extend",
        nargs="+",
        default=[],
        help=f"override {example}",
    )
