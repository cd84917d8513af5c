"""Draws the training and validation curves of two or more runs, read from their TensorBoard events, into one PNG.

Example:
    python scripts/compare_runs.py runs/medmnist_cls/mobilenet runs/medmnist_cls/mlp \
        --output runs/medmnist_cls/compare.png
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)


def read_scalars(run_dir: str | Path) -> dict[str, tuple[list[int], list[float]]]:
    """``{tag: (steps, values)}`` for every scalar tag in the TensorBoard event files under ``run_dir``, by step.

    Raises:
        FileNotFoundError: if ``run_dir`` holds no event files.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = Path(run_dir)
    if not list(run_dir.glob("events.out.tfevents.*")):
        raise FileNotFoundError(f"no TensorBoard event files (events.out.tfevents.*) in {run_dir}")
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["scalars"]:
        # a re-run into the same folder adds event files that repeat steps: the value written last wins
        by_step = {e.step: e.value for e in sorted(acc.Scalars(tag), key=lambda e: e.wall_time)}
        steps = sorted(by_step)
        out[tag] = (steps, [by_step[s] for s in steps])
    return out


def _panels(tags: set[str]) -> dict[str, list[str]]:
    # "<name>/train" and "<name>/validation" (medkit's LossCurvesHandler) share a panel; other tags get their own
    panels: dict[str, list[str]] = {}
    for tag in sorted(tags, key=lambda t: (not t.startswith(("train", "loss")), t)):
        panels.setdefault(tag.split("/")[0] if "/" in tag else tag, []).append(tag)
    return panels


def compare_runs(run_dirs: Sequence[str | Path], output: str | Path, labels: Sequence[str] | None = None) -> Path:
    """Plots the scalars of every run into one PNG: one panel per quantity, one colour per run.

    Training and validation curves of the same quantity (``loss/train`` and ``loss/validation``) are overlaid in one
    panel, solid for training and dashed for validation; ``train_loss`` is plotted per iteration, the rest per epoch.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(labels) if labels else [Path(r).name for r in run_dirs]
    if len(labels) != len(run_dirs):
        raise ValueError(f"{len(labels)} labels for {len(run_dirs)} runs")
    runs = [read_scalars(r) for r in run_dirs]
    panels = _panels({t for r in runs for t in r})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    for ax, (name, tags) in zip(axes[0], panels.items()):
        for k, (label, scalars) in enumerate(zip(labels, runs)):
            for tag in tags:
                if tag in scalars:
                    split = tag.split("/")[1] if "/" in tag else ""
                    style = "--" if split.startswith("val") else "-"
                    ax.plot(*scalars[tag], style, color=f"C{k}", label=f"{label} {split}".strip())
        ax.set_title(name)
        ax.set_xlabel("iteration" if name == "train_loss" else "epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=100)
    plt.close(fig)
    logger.info("wrote %s", output)
    return output


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders holding TensorBoard event files (two or more)")
    parser.add_argument("--output", required=True, help="PNG to write")
    parser.add_argument("--labels", nargs="+", help="legend names, one per run (default: folder names)")
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("give at least two runs to compare")
    logging.basicConfig(level=logging.INFO)
    compare_runs(args.runs, args.output, args.labels)


if __name__ == "__main__":
    main()
