"""``medkit bundles``: the bundles with their task, inputs, outputs and latest measured metrics (from metadata.json).

::

    medkit bundles [--bundles-root bundles]
"""

from __future__ import annotations

import argparse

from medkit.commands import add_command

__all__ = ["add_parser"]


def _bundles(args: argparse.Namespace) -> int:
    from medkit.catalog import bundle_catalog, format_catalog

    print(format_catalog(bundle_catalog(args.bundles_root)), end="")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``bundles`` to the ``medkit`` parser."""
    p = add_command(
        subparsers, "bundles", "list the bundles: task, inputs, outputs, measured metrics (metadata.json)", __doc__
    )
    p.add_argument("--bundles-root", default=None, help="folder of bundles (default: ./bundles, else the repository's)")
    p.set_defaults(func=_bundles)
