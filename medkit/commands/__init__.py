"""Subcommands of the ``medkit`` command line, one module each.

Each module defines ``add_parser(subparsers)``, which adds its subcommand (:func:`add_command` shows the module's
docstring as its ``--help``) and sets ``func`` (returning the exit code) with ``set_defaults``. ``medkit.cli`` imports
the modules listed in ``COMMANDS``; a new command is a new module plus one entry there.
"""

from __future__ import annotations

import argparse

COMMANDS: tuple[str, ...] = ("data", "sweep", "explain", "show_augmentations", "bundle", "bundles", "report", "export")


def add_command(subparsers: argparse._SubParsersAction, name: str, summary: str, doc: str) -> argparse.ArgumentParser:
    """Adds the subcommand ``name``: ``summary`` in ``medkit --help``, ``doc`` (its module docstring, usage block
    included, line breaks kept) in ``medkit <name> --help``.

    Args:
        subparsers: the ``medkit`` parser's subparsers.
        name: the subcommand.
        summary: one line for the list of commands.
        doc: the command module's ``__doc__``.
    """
    return subparsers.add_parser(
        name, help=summary, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
