"""``medkit report``: write a run's one-page report, ``report.md`` and a self-contained ``report.html``.

::

    medkit report RUN_DIR [--eval-dir RUN_DIR/eval]

The evaluate layer of every bundle writes the report at its end; this command rewrites it at any time, for example
for a run still training (curves and settings only) or after an evaluation whose report failed.
"""

from __future__ import annotations

import argparse

from medkit.commands import add_command

__all__ = ["add_parser"]


def _report(args: argparse.Namespace) -> int:
    from medkit.report import write_report

    for path in write_report(args.run_dir, args.eval_dir):
        print(path)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``report`` to the ``medkit`` parser."""
    p = add_command(subparsers, "report", "write a run folder's report.md and self-contained report.html", __doc__)
    p.add_argument("run_dir", help="the run folder (a bundle run's --output_dir)")
    p.add_argument("--eval-dir", default=None, help="the evaluation folder (default: RUN_DIR/eval)")
    p.set_defaults(func=_report)
