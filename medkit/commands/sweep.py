"""``medkit sweep``: run a bundle over a grid of config overrides, then write summary.csv/.md and curves.png.

::

    medkit sweep BUNDLE --name NAME --set KEY=V1,V2 [--set KEY2=...] [--config train.json ...] [--runs-root runs]
        [--dry-run] [--max-parallel 1] [--timeout-min N] [--metric TAG] [--mode max|min] [--curve-tag TAG]
        [--group-by KEY] [-- extra overrides for every run]

Exit code 0 when every variant is ok, 3 when some failed or timed out (their log tails are in summary.md).
"""

from __future__ import annotations

import argparse
import shlex

from medkit.commands import add_command

__all__ = ["add_parser"]


def _sweep(args: argparse.Namespace) -> int:
    from medkit.sweep import parse_set, plan_sweep, report_sweep, run_sweep
    from medkit.utils import save_json

    sets = [parse_set(s) for s in args.set]
    sweep_dir, variants = plan_sweep(
        args.bundle, args.name, sets, configs=args.config, runs_root=args.runs_root, extra_args=args.passthrough
    )
    if args.group_by and args.group_by not in dict(sets):
        raise ValueError(f"--group-by {args.group_by!r} is not a swept key ({', '.join(dict(sets)) or 'none'})")
    print(f"sweep {sweep_dir}: {len(variants)} variants")
    statuses = run_sweep(variants, args.max_parallel, args.timeout_min and args.timeout_min * 60, args.dry_run)
    if args.dry_run:
        for i, (v, s) in enumerate(zip(variants, statuses, strict=True), 1):
            print(f"[{i}/{len(variants)}] {'skip (ok)' if s else 'run'} {v.output_dir}\n    {shlex.join(v.command)}")
        return 0
    save_json({"args": {k: v for k, v in vars(args).items() if k != "func"}}, sweep_dir / "sweep.json")
    rows = report_sweep(sweep_dir, variants, statuses, args.metric, args.mode, args.curve_tag, args.group_by)
    print((sweep_dir / "summary.md").read_text())
    return 0 if all(r["status"] == "ok" for r in rows) else 3


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``sweep`` to the ``medkit`` parser; arguments after ``--`` go to every run."""
    p = add_command(
        subparsers, "sweep", "run a bundle over a grid of overrides (one subprocess per variant) and summarise", __doc__
    )
    p.add_argument("bundle", help="bundle name under bundles/ or a path to a bundle folder")
    p.add_argument("--name", required=True, help="sweep name: runs go to RUNS_ROOT/<bundle>/<name>/<variant>/")
    p.add_argument("--set", action="append", default=[], metavar="KEY=V1,V2", help="config id and values (repeatable)")
    p.add_argument("--config", action="append", default=[], help="config layer, in order (default: train.json)")
    p.add_argument("--runs-root", default="runs", help="root of the run folders (default: runs)")
    p.add_argument("--dry-run", action="store_true", help="print each variant's folder and command; run nothing")
    p.add_argument(
        "--max-parallel",
        type=int,
        default=1,
        help="variants run at once (default 1); the CPUs are split between them (OMP_NUM_THREADS, unless set)",
    )
    p.add_argument("--timeout-min", type=float, default=None, help="stop a variant after this many minutes")
    p.add_argument("--metric", default=None, help="TensorBoard tag to rank by (default: first val_* tag)")
    p.add_argument("--mode", choices=["max", "min"], default=None, help="default: min for loss tags, else max")
    p.add_argument("--curve-tag", default=None, help="tag plotted in curves.png (default: the metric)")
    p.add_argument("--group-by", default=None, help="one curves panel per value of this swept key, best/worst marked")
    p.set_defaults(func=_sweep, accepts_passthrough=True)
