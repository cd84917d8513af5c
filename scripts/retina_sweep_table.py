"""Table of a ``medkit sweep retina_vessel_seg`` folder: validation and test FOV Dice (and test ROC AUC), mean ± sd over
the runs that share the ``--group-by`` keys (e.g. the seeds of each augmentation preset).

::

    python scripts/retina_sweep_table.py runs/retina_vessel_seg/augmentation --group-by augmentation
    python scripts/retina_sweep_table.py runs/retina_vessel_seg/lr_schedule --group-by learning_rate lr_schedule

For each finished (``ok``) variant it reads the best and the last ``val_fov_dice`` from the TensorBoard events (and
``val_fov_auc`` at the epoch of the best Dice) and,
unless ``--no-test``, the test-split metrics of ``model.pt`` (the best validation epoch) from
``<variant>/eval/metrics.json``, running the bundle's evaluate layer once to write it when it is missing (its output in
``<variant>/evaluate_run.log``). Writes ``table.md`` and ``table.csv`` in the sweep folder and prints the Markdown
table, groups ranked by the first metric column, best first.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from medkit.curves import read_scalars
from medkit.sweep import evaluate_once, sweep_runs
from medkit.tables import markdown_table, mean_std_table, write_table

CONFIGS = Path("bundles/retina_vessel_seg/configs")
VAL = {
    "best_val_fov_dice": "best val FOV Dice",
    "final_val_fov_dice": "last val FOV Dice",
    "val_fov_auc": "val FOV ROC AUC at the best Dice",
}
TEST = {"test_fov_dice": "test FOV Dice", "test_fov_auc": "test FOV ROC AUC"}


def evaluated_metrics(run_dir: Path, overrides: dict[str, str]) -> dict[str, float]:
    """The test-split metrics of ``run_dir/model.pt`` as ``test_fov_*``, evaluated once (kept in ``eval/``)."""
    metrics = evaluate_once(run_dir, [CONFIGS / "train.json", CONFIGS / "evaluate.json"], overrides, "evaluate_run.log")
    return {"test" + key.removeprefix("val"): value for key, value in metrics.items()}


def val_metrics(run_dir: Path) -> dict[str, float]:
    """The best and the last ``val_fov_dice`` of the run's TensorBoard events, and ``val_fov_auc`` at the epoch of
    the best Dice (the epoch ``model.pt`` keeps)."""
    scalars = read_scalars(run_dir)
    steps, values = scalars["val_fov_dice"]
    best = max(range(len(values)), key=values.__getitem__)  # the first epoch of the best value, as the checkpoint
    auc = dict(zip(*scalars["val_fov_auc"]))
    return {"best_val_fov_dice": values[best], "final_val_fov_dice": values[-1], "val_fov_auc": auc[steps[best]]}


def collect(sweep_dir: Path, with_test: bool = True) -> list[dict]:
    """One row per finished variant of ``sweep_dir``: its overrides and metrics; other variants are reported on
    stderr and left out."""
    rows = []
    for run_dir, status in sweep_runs(sweep_dir):
        if status["status"] != "ok":
            print(f"skipping {run_dir.name}: {status['status']}", file=sys.stderr)
            continue
        row = {**status["overrides"], **val_metrics(run_dir)}
        if with_test:
            row.update(evaluated_metrics(run_dir, status["overrides"]))
        rows.append(row)
    return rows


def grouped_table(rows: Sequence[dict], group_by: Sequence[str], columns: Sequence[str]) -> list[dict]:
    """:func:`medkit.tables.mean_std_table` over the rows grouped by the ``group_by`` values, best first by
    ``columns[0]``; each group keeps its ``group_by`` values as fields."""
    keyed = [{**row, "group": " ".join(f"{k}={row.get(k)}" for k in group_by)} for row in rows]
    table = mean_std_table(keyed, "group", columns)
    firsts = {row["group"]: row for row in reversed(keyed)}
    for entry in table:
        entry.update({k: firsts[entry["group"]].get(k) for k in group_by})
    return sorted(table, key=lambda e: -e[columns[0]])


def to_markdown(table: Sequence[dict], group_by: Sequence[str], labels: dict[str, str]) -> str:
    """Cells ``mean ± sd`` (3 decimals) for groups of several runs, the plain value for one run."""

    def cell(entry: dict, col: str) -> str:
        return f"{entry[col]:.3f} ± {entry[col + '_std']:.3f}" if entry["n"] > 1 else f"{entry[col]:.3f}"

    head = [*group_by, "runs", *labels.values()]
    return markdown_table(head, [[*(e[k] for k in group_by), e["n"], *(cell(e, c) for c in labels)] for e in table])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--group-by", nargs="+", required=True, help="swept keys; runs sharing them are averaged")
    parser.add_argument("--no-test", action="store_true", help="validation only: run no evaluation")
    args = parser.parse_args(argv)
    rows = collect(args.sweep_dir, with_test=not args.no_test)
    if not rows:
        print(f"error: no finished variants in {args.sweep_dir}", file=sys.stderr)
        return 1
    labels = VAL if args.no_test else {**TEST, **VAL}
    table = grouped_table(rows, args.group_by, list(labels))
    text = to_markdown(table, args.group_by, labels)
    write_table(table, text, args.sweep_dir / "table")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
