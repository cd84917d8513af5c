"""Draws the training loss and validation metrics of two or more runs, read from their TensorBoard events, into one PNG.

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
    """``{tag: (steps, values)}`` for every scalar tag in the TensorBoard event files under ``run_dir``.

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
        events = acc.Scalars(tag)
        out[tag] = ([e.step for e in events], [e.value for e in events])
    return out


def compare_runs(run_dirs: Sequence[str | Path], output: str | Path, labels: Sequence[str] | None = None) -> Path:
    """Plots each scalar tag in its own panel with one line per run; the training loss is plotted per iteration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(labels) if labels else [Path(r).name for r in run_dirs]
    if len(labels) != len(run_dirs):
        raise ValueError(f"{len(labels)} labels for {len(run_dirs)} runs")
    runs = [read_scalars(r) for r in run_dirs]
    tags = sorted({t for r in runs for t in r}, key=lambda t: (not t.startswith("train"), t))
    fig, axes = plt.subplots(1, len(tags), figsize=(4.5 * len(tags), 3.6), squeeze=False)
    for ax, tag in zip(axes[0], tags):
        for label, scalars in zip(labels, runs):
            if tag in scalars:
                ax.plot(*scalars[tag], label=label)
        ax.set_title(tag)
        ax.set_xlabel("iteration" if tag.startswith("train") else "epoch")
        ax.grid(alpha=0.3)
        ax.legend()
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
