"""Subcommands of the ``medkit`` command line, one module each.

Each module defines ``add_parser(subparsers)``, which adds its subcommand and sets ``func`` (returning the exit code)
with ``set_defaults``. ``medkit.cli`` imports the modules listed in ``COMMANDS``; a new command is a new module plus
one entry there.
"""

from __future__ import annotations

COMMANDS: tuple[str, ...] = ("data", "sweep", "explain", "show_augmentations", "bundle", "export")
