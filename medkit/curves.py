"""TensorBoard scalars of run folders: read them, rank runs, and plot one tag for many runs in one PNG.

Used by ``medkit sweep`` for ``curves.png``, by ``medkit report`` for a run's loss, metric and learning-rate panels
(:func:`plot_panels`), and by any bundle or script that compares runs, for example the training loss of every seed,
one panel per loss function, with the best and worst run of each panel marked::

    from medkit.curves import plot_groups
    plot_groups(run_dirs, groups={"dice": ["dice_s0", "dice_s1", "dice_s2"], "bce": [...]}, tag="train_loss",
                out_path="runs/shapes_seg/losses/curves.png", scores=best_val_dice, mode="max", smoothing=0.6)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from medkit.utils import save_figure

logger = logging.getLogger(__name__)

__all__ = [
    "Curve",
    "best_and_worst",
    "best_point",
    "metric_mode",
    "plot_curves",
    "plot_groups",
    "plot_panels",
    "read_scalars",
    "smooth",
]

Curve = tuple[list[int], list[float]]
"""One scalar tag of one run: (steps, values), sorted by step."""


def read_scalars(run_dir: str | os.PathLike) -> dict[str, Curve]:
    """Reads every scalar tag of the TensorBoard event files directly in ``run_dir``.

    Tags keep the order in which the run first wrote them (a MONAI evaluator writes its key metric first). A resumed
    run has several event files; they are read oldest first and a later value for the same step replaces the earlier.

    Returns:
        ``{tag: (steps, values)}``; empty when the folder has no event file.
    """
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    merged: dict[str, dict[int, float]] = {}
    for path in sorted(Path(run_dir).glob("events.out.tfevents.*"), key=lambda p: (p.stat().st_mtime, p.name)):
        acc = EventAccumulator(str(path), size_guidance={SCALARS: 0})
        try:
            acc.Reload()
        except Exception as exc:  # a truncated file from a killed run must not stop the summary
            logger.warning("could not read TensorBoard events %s: %s", path, exc)
            continue
        for tag in acc.Tags()[SCALARS]:
            merged.setdefault(tag, {}).update({e.step: float(e.value) for e in acc.Scalars(tag)})
    return {tag: (sorted(points), [points[s] for s in sorted(points)]) for tag, points in merged.items()}


def metric_mode(tag: str) -> str:
    """``"min"`` for tags that name a loss or an error, else ``"max"``."""
    low = tag.lower()
    return "min" if any(word in low for word in ("loss", "error", "distance")) else "max"


def _check_mode(mode: str) -> None:
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")


def best_point(curve: Curve, mode: str = "max") -> tuple[int, float]:
    """The step and value of the best point of ``curve`` (the first one, on a tie).

    Args:
        curve: ``(steps, values)``, not empty.
        mode: ``"max"`` or ``"min"`` (see :func:`metric_mode`).
    """
    _check_mode(mode)
    steps, values = curve
    pick = max if mode == "max" else min
    best = pick(range(len(values)), key=values.__getitem__)
    return steps[best], values[best]


def best_and_worst(scores: Mapping[str, float | None], mode: str = "max") -> dict[str, str]:
    """Labels the best and the worst run of ``scores`` (``None`` scores are ignored).

    Returns:
        ``{run: "best"}`` and ``{run: "worst"}`` entries; one entry when only one run has a score, none when all
        scores are equal.
    """
    _check_mode(mode)
    valid = {k: v for k, v in scores.items() if v is not None}
    if not valid or (len(valid) > 1 and len(set(valid.values())) == 1):
        return {}  # nothing to rank, or all tied
    ordered = sorted(valid, key=valid.__getitem__, reverse=mode == "max")
    labels = {ordered[-1]: "worst"} if len(ordered) > 1 else {}
    labels[ordered[0]] = "best"
    return labels


def smooth(values: Sequence[float], smoothing: float) -> list[float]:
    """TensorBoard-style exponential moving average; ``smoothing=0`` returns the values unchanged."""
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    out, last = [], None
    for value in values:
        last = value if last is None else smoothing * last + (1.0 - smoothing) * value
        out.append(last)
    return out


_COLORS = {"best": "tab:green", "worst": "tab:red"}


def _draw(ax, curves: Mapping[str, Curve], highlight: Mapping[str, str], smoothing: float) -> None:
    for name, (steps, values) in curves.items():
        label = f"{name} ({highlight[name]})" if name in highlight else name
        style = {"linewidth": 1.0, "alpha": 0.7}
        if name in highlight:
            style = {"linewidth": 2.5, "zorder": 3, "color": _COLORS.get(highlight[name])}
        marker = "o" if len(steps) < 30 else None
        ax.plot(steps, smooth(values, smoothing), marker=marker, markersize=3, label=label, **style)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize="small")


def plot_curves(
    curves: Mapping[str, Curve],
    out_path: str | os.PathLike,
    *,
    tag: str,
    highlight: Mapping[str, str] | None = None,
    failed: Sequence[str] = (),
    title: str | None = None,
    smoothing: float = 0.0,
) -> Path:
    """Overlays one tag of several runs in one PNG.

    Args:
        curves: ``{run name: (steps, values)}`` of the tag, e.g. ``{n: read_scalars(d)[tag] for n, d in ...}``.
        out_path: the PNG to write (parent folders are created).
        tag: the plotted tag, used for the y label.
        highlight: runs to draw thick with a label in the legend, e.g. ``{"lr=1e-3": "best"}``.
        failed: names of runs without a curve (failed variants); listed in the title.
        title: figure title; default the tag.
        smoothing: exponential smoothing of the drawn values, as TensorBoard's slider.

    Returns:
        ``out_path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    _draw(ax, curves, highlight or {}, smoothing)
    ax.set_xlabel("step (epoch for validation metrics)")
    ax.set_ylabel(tag)
    ax.set_title(_title(title or tag, failed), fontsize="medium")
    return _save(fig, out_path)


def plot_groups(
    run_dirs: Mapping[str, str | os.PathLike],
    groups: Mapping[str, Sequence[str]],
    *,
    tag: str,
    out_path: str | os.PathLike,
    scores: Mapping[str, float | None] | None = None,
    mode: str | None = None,
    smoothing: float = 0.0,
    title: str | None = None,
) -> Path:
    """One panel per group (e.g. per loss function), each run a line, the best and worst run of each panel marked.

    Args:
        run_dirs: ``{run name: run folder}`` holding TensorBoard events.
        groups: ``{panel title: [run names]}``, e.g. the seeds of one loss.
        tag: the plotted tag (e.g. ``train_loss``).
        out_path: the PNG to write.
        scores: the value that ranks runs (e.g. each run's best validation Dice); default the last value of ``tag``.
        mode: ``"max"`` or ``"min"`` for ``scores``; default from the tag name (:func:`metric_mode`).
        smoothing: exponential smoothing of the drawn values.
        title: figure title; default the tag.

    Returns:
        ``out_path``.
    """
    curves = {name: read_scalars(path).get(tag) for name, path in run_dirs.items()}
    if scores is None:
        scores = {name: c[1][-1] if c else None for name, c in curves.items()}
        mode = mode or metric_mode(tag)
    mode = mode or "max"
    panels: dict[str, dict[str, Curve]] = {}
    highlights: dict[str, dict[str, str]] = {}
    for group, names in groups.items():
        present = {n: curves[n] for n in names if curves.get(n)}
        panel = _title(str(group), [n for n in names if n not in present])
        panels[panel] = present
        highlights[panel] = best_and_worst({n: scores.get(n) for n in present}, mode)
    return plot_panels(
        panels, out_path, xlabel="step", ylabel=tag, highlights=highlights, smoothing=smoothing, title=title or tag
    )


def plot_panels(
    panels: Mapping[str, Mapping[str, Curve]],
    out_path: str | os.PathLike,
    *,
    xlabel: str = "step",
    ylabel: str | None = None,
    highlights: Mapping[str, Mapping[str, str]] | None = None,
    smoothing: float = 0.0,
    title: str | None = None,
) -> Path:
    """One figure, one panel per entry of ``panels`` side by side, each line a curve: the drawing behind
    :func:`plot_groups` (runs of one tag per panel) and the run report (tags of one run per panel).

    Args:
        panels: ``{panel title: {line label: (steps, values)}}``; no panels draws one empty panel.
        out_path: the PNG to write.
        xlabel: the x label of every panel.
        ylabel: the y label of every panel; default none.
        highlights: ``{panel title: {line label: "best" | "worst"}}``: lines drawn thick, labelled in the legend.
        smoothing: exponential smoothing of the drawn values.
        title: figure title; default none.

    Returns:
        ``out_path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = max(len(panels), 1)
    fig, axes = plt.subplots(1, width, figsize=(5 * width, 4.5), squeeze=False)
    for ax, (panel, curves) in zip(axes[0], panels.items(), strict=False):
        _draw(ax, curves, (highlights or {}).get(panel, {}), smoothing)
        ax.set_title(panel, fontsize="medium")
        ax.set_xlabel(xlabel)
        if ylabel:
            ax.set_ylabel(ylabel)
    if title:
        fig.suptitle(title)
    return _save(fig, out_path)


def _title(title: str, failed: Sequence[str]) -> str:
    return f"{title}\nfailed / no data: {', '.join(failed)}" if failed else title


def _save(fig, out_path: str | os.PathLike) -> Path:
    out_path = save_figure(fig, out_path)
    logger.info("wrote %s", out_path)
    return out_path
