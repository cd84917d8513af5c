"""``medkit`` command line: thin wrappers over library functions.

Each subcommand lives in its own module under ``medkit.commands`` (listed in ``medkit.commands.COMMANDS``); run
``medkit <command> --help`` for its options. Training, evaluation and inference run through MONAI bundles:
``python -m monai.bundle run --config_file bundles/<name>/configs/train.json``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from medkit.commands import COMMANDS

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``medkit`` parser with every subcommand in ``medkit.commands.COMMANDS``."""
    parser = argparse.ArgumentParser(prog="medkit", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"medkit.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the ``medkit`` command line; returns the exit code (1 with a one-line message on bad input)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (RuntimeError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
