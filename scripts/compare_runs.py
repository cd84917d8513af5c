"""Draws the training and validation curves of two or more runs, read from their TensorBoard events, into one PNG.

Example:
    python scripts/compare_runs.py runs/medmnist_cls/mobilenet runs/medmnist_cls/mlp \
        --output runs/medmnist_cls/compare.png --panels loss val_auc val_acc --title "breastmnist"
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


def select_panels(panels: dict[str, list[str]], names: Sequence[str] | None) -> dict[str, list[str]]:
    """The panels called ``names``, in that order (all of them for ``None``).

    Raises:
        ValueError: for a name no run has, listing the panels there are.
    """
    if not names:
        return panels
    unknown = [n for n in names if n not in panels]
    if unknown:
        raise ValueError(f"no panel {unknown} in these runs; they have {sorted(panels)}")
    return {n: panels[n] for n in names}


def compare_runs(
    run_dirs: Sequence[str | Path],
    output: str | Path,
    labels: Sequence[str] | None = None,
    panels: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Plots the scalars of every run into one PNG: one panel per quantity, one colour per run.

    Training and validation curves of the same quantity (``loss/train`` and ``loss/validation``) are overlaid in one
    panel, solid for training and dashed for validation; ``train_loss`` is plotted per iteration, the rest per epoch.

    Args:
        run_dirs: run folders holding TensorBoard event files.
        output: the PNG to write.
        labels: legend names, one per run (default: the folder names).
        panels: the panels to draw, in order (``loss`` for the overlaid losses, else a tag such as ``val_auc``);
            ``None`` draws every one.
        title: a title over the panels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(labels) if labels else [Path(r).name for r in run_dirs]
    if len(labels) != len(run_dirs):
        raise ValueError(f"{len(labels)} labels for {len(run_dirs)} runs")
    runs = [read_scalars(r) for r in run_dirs]
    chosen = select_panels(_panels({t for r in runs for t in r}), panels)
    fig, axes = plt.subplots(1, len(chosen), figsize=(4.5 * len(chosen), 3.6 + 0.4 * bool(title)), squeeze=False)
    for ax, (name, tags) in zip(axes[0], chosen.items()):
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
    if title:
        fig.suptitle(title)
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
    parser.add_argument(
        "--panels", nargs="+", help="panels to draw, in order, e.g. loss val_auc val_acc (default: all)"
    )
    parser.add_argument("--title", help="title over the panels")
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("give at least two runs to compare")
    logging.basicConfig(level=logging.INFO)
    compare_runs(args.runs, args.output, args.labels, args.panels, args.title)


if __name__ == "__main__":
    main()
