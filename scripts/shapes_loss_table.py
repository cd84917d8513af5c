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
import csv
import json
import subprocess
import sys
from pathlib import Path

from medkit.curves import read_scalars
from medkit.data.synthetic_shapes import SHAPE_CLASSES
from medkit.tables import format_markdown, mean_std_table

CONFIGS = "['bundles/shapes_seg/configs/train.json','bundles/shapes_seg/configs/evaluate.json']"
ORDER = ("mse", "dice", "dice_mse")


def _test_metrics(run_dir: Path, overrides: dict[str, str]) -> dict[str, float]:
    report = run_dir / "eval" / "metrics.json"
    if not report.is_file():
        cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", CONFIGS, "--output_dir", str(run_dir)]
        for key, value in overrides.items():
            cmd += [f"--{key}", value]
        with open(run_dir / "evaluate.log", "w") as log:
            subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)
    return json.loads(report.read_text())["metrics"]


def _val_metrics(run_dir: Path) -> dict[str, float]:
    return {tag: values[-1] for tag, (_, values) in read_scalars(run_dir).items() if tag.startswith("val_")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--source", choices=["test", "val"], default="test")
    parser.add_argument("--group-by", default="loss")
    args = parser.parse_args(argv)
    rows = []
    for status_file in sorted(args.sweep_dir.glob("*/sweep_status.json")):
        status = json.loads(status_file.read_text())
        if status["status"] != "ok":
            print(f"skipping {status_file.parent.name}: {status['status']}", file=sys.stderr)
            continue
        run_dir, overrides = status_file.parent, status["overrides"]
        metrics = _test_metrics(run_dir, overrides) if args.source == "test" else _val_metrics(run_dir)
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
    (args.sweep_dir / f"loss_table_{args.source}.md").write_text(text)
    with open(args.sweep_dir / f"loss_table_{args.source}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
