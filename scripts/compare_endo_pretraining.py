"""Compare endo_instrument_seg trained from scratch, with flip augmentation, and from colorization pretraining.

Runs, one ``python -m monai.bundle run`` subprocess each, all with the same hyperparameters:

1. ``pretrain_colorization``: train.json + pretrain_colorization.json (grey -> RGB, MSE) on the colorization frames;
2. ``scratch``: train.json, ``--augmentation none``;
3. ``flips``: train.json, ``--augmentation flips``;
4. ``pretrained``: train.json + finetune.json, ``--augmentation none``, initialised from step 1's ``model.pt``;

then the evaluate layer on each segmentation run's test split. Writes ``summary.md``, ``summary.csv`` and
``val_dice.png`` (validation Dice per epoch of the three runs) into ``--runs-root`` and prints the rows as JSON.

Examples (from the repo root)::

    python scripts/compare_endo_pretraining.py
    python scripts/compare_endo_pretraining.py --epochs 10 --pretrain-epochs 10 -- --dataset_dir data/my_endo
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundles" / "endo_instrument_seg" / "configs"
VARIANTS = {
    "scratch": (["train.json"], ["--augmentation", "none"]),
    "flips": (["train.json"], ["--augmentation", "flips"]),
    "pretrained": (["train.json", "finetune.json"], ["--augmentation", "none"]),
}


def _layers(*names: str) -> str:
    return "[" + ",".join(f"'{CONFIGS / n}'" for n in names) + "]"


def _bundle(layers: list[str], args: list[str], log: Path) -> float:
    """Runs one bundle command from the repo root, logging to ``log``; returns its wall time in seconds."""
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", _layers(*layers), *args]
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(command, cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit {proc.returncode}); see {log}")
    return time.perf_counter() - start


def _val_curve(run_dir: Path, tag: str = "val_mean_dice") -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0}).Reload()
    return [e.value for e in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


def _plot(curves: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, label=name)
    ax.set(xlabel="epoch", ylabel="validation Dice (foreground classes)", title="endo_instrument_seg")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _markdown(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [
            (f"{row[c]:.1f}" if c.endswith("_s") else f"{row[c]:.3f}") if isinstance(row[c], float) else str(row[c])
            for c in columns
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-root", type=Path, default=Path("runs/endo_instrument_seg/compare"))
    parser.add_argument("--epochs", type=int, default=15, help="segmentation epochs of each variant")
    parser.add_argument("--pretrain-epochs", type=int, default=8, help="colorization pretraining epochs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    root = args.runs_root if args.runs_root.is_absolute() else REPO / args.runs_root
    common = ["--seed", str(args.seed), *extra]

    pre = root / "pretrain_colorization"
    pre_s = _bundle(
        ["train.json", "pretrain_colorization.json"],
        ["--output_dir", str(pre), "--epochs", str(args.pretrain_epochs), *common],
        pre / "log.txt",
    )
    rows, curves = [], {}
    for name, (layers, variant_args) in VARIANTS.items():
        out = root / name
        run_args = ["--output_dir", str(out), "--epochs", str(args.epochs), *variant_args, *common]
        if name == "pretrained":
            run_args += ["--pretrained_ckpt", str(pre / "model.pt")]
        train_s = _bundle(layers, run_args, out / "log.txt")
        _bundle([*layers, "evaluate.json"], ["--output_dir", str(out), *common], out / "eval_log.txt")
        metrics = json.loads((out / "eval" / "metrics.json").read_text())
        classes = metrics["classes"]
        curves[name] = _val_curve(out)
        rows.append(
            {
                "variant": name,
                "best_val_dice": max(curves[name]) if curves[name] else float("nan"),
                "test_dice": metrics["metrics"]["test_dice_mean_fg"],
                "test_dice_with_background": metrics["metrics"]["test_dice_mean"],
                **{f"test_{c}": metrics["metrics"][f"test_dice_{c}"] for c in classes},
                "train_s": round(train_s, 1),
            }
        )
    columns = list(rows[0])
    with open(root / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    (root / "summary.md").write_text(_markdown(rows, columns))
    _plot(curves, root / "val_dice.png")
    print(json.dumps({"pretrain_s": round(pre_s, 1), "epochs": args.epochs, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
