"""Loss-comparison table for a ``medkit sweep shapes_seg`` folder: mean IoU and per-class Dice, mean ± std per loss.

::

    python scripts/shapes_loss_table.py runs/shapes_seg/losses [--source test|val] [--group-by loss]

``--source test`` (default) runs the bundle's evaluate layer on each variant's saved test split (once; the result is
kept in ``<variant>/eval/metrics.json``) and reads it; ``--source val`` reads the last validation epoch from each
variant's TensorBoard events instead. Writes ``loss_table_<source>.md`` and ``.csv`` in the sweep folder and prints the
Markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medkit.curves import read_scalars
from medkit.data.synthetic_shapes import SHAPE_CLASSES
from medkit.sweep import evaluate_once, sweep_runs
from medkit.tables import format_markdown, mean_std_table, write_table

CONFIGS = ["bundles/shapes_seg/configs/train.json", "bundles/shapes_seg/configs/evaluate.json"]
ORDER = ("mse", "dice", "dice_mse")


def _val_metrics(run_dir: Path) -> dict[str, float]:
    return {tag: values[-1] for tag, (_, values) in read_scalars(run_dir).items() if tag.startswith("val_")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--source", choices=["test", "val"], default="test")
    parser.add_argument("--group-by", default="loss")
    args = parser.parse_args(argv)
    rows = []
    for run_dir, status in sweep_runs(args.sweep_dir):
        if status["status"] != "ok":
            print(f"skipping {run_dir.name}: {status['status']}", file=sys.stderr)
            continue
        overrides = status["overrides"]
        metrics = evaluate_once(run_dir, CONFIGS, overrides) if args.source == "test" else _val_metrics(run_dir)
        rows.append({**overrides, **metrics})
    if not rows:
        print(f"error: no finished variants in {args.sweep_dir}", file=sys.stderr)
        return 1
    columns = ["val_mean_iou", "val_mean_dice"] + [f"val_dice_{c}" for c in SHAPE_CLASSES[1:]]
    labels = {"val_mean_iou": "mean IoU", "val_mean_dice": "mean Dice"} | {
        f"val_dice_{c}": f"Dice {c}" for c in SHAPE_CLASSES[1:]
    }
    table = mean_std_table(rows, args.group_by, columns, order=ORDER)
    text = format_markdown(table, args.group_by, columns, labels)
    write_table(table, text, args.sweep_dir / f"loss_table_{args.source}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
