"""PNG grids of explanations: one row per image, written with matplotlib's Agg backend."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medkit.interpret.feature_maps import FeatureMaps
from medkit.utils import save_figure

__all__ = ["display_image", "save_feature_map_grid", "save_map_grid"]

logger = logging.getLogger(__name__)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _scaled(plane: np.ndarray) -> np.ndarray:
    low, high = float(np.min(plane)), float(np.max(plane))
    return (plane - low) / (high - low) if high > low else np.zeros_like(plane, dtype=float)


def display_image(image: np.ndarray, transpose: bool = False) -> np.ndarray:
    """A channel-first image ``(C, H, W)`` as a displayable ``(H, W)`` grey or ``(H, W, 3)`` RGB array in [0, 1].

    Intensities are min-max scaled (preprocessed inputs are often normalised). ``transpose`` swaps the two spatial
    axes, for images loaded by MONAI's 2D readers, which put x first.
    """
    image = np.asarray(image, dtype=float)
    if transpose:
        image = np.swapaxes(image, -1, -2)
    if image.shape[0] == 3:
        return _scaled(np.moveaxis(image, 0, -1))
    return _scaled(image[0])


def _save(fig, path: Path) -> Path:
    save_figure(fig, path)
    logger.info("figure written to %s", path)
    return path


def save_map_grid(
    path: str | os.PathLike,
    images: Sequence[np.ndarray],
    maps: Sequence[np.ndarray],
    titles: Sequence[str],
    map_name: str,
    overlay: bool = False,
    transpose: bool = False,
) -> Path:
    """Writes a two-column grid: each input and its explanation map (saliency, Grad-CAM, ...).

    Args:
        path: PNG file to write.
        images: channel-first inputs ``(C, H, W)``.
        maps: one ``(H, W)`` map per image.
        titles: one row title per image (file name, label, prediction).
        map_name: column title of the maps.
        overlay: draw the map in colour over the grey input (Grad-CAM) instead of alone (saliency).
        transpose: see :func:`display_image`.
    """
    if not len(images) == len(maps) == len(titles) or not images:
        raise ValueError(f"need as many images, maps and titles (>= 1), got {len(images)}, {len(maps)}, {len(titles)}")
    plt = _pyplot()
    fig, axes = plt.subplots(len(images), 2, figsize=(5, 2.5 * len(images)), squeeze=False)
    for row, (image, amap, title) in enumerate(zip(images, maps, titles)):
        shown = display_image(image, transpose)
        amap = np.asarray(amap, dtype=float)
        amap = amap.T if transpose else amap
        axes[row, 0].imshow(shown, cmap=None if shown.ndim == 3 else "gray")
        axes[row, 0].set_title(title, fontsize=7)
        if overlay:
            axes[row, 1].imshow(shown if shown.ndim == 2 else shown.mean(-1), cmap="gray")
            axes[row, 1].imshow(amap, cmap="jet", alpha=0.5, vmin=0, vmax=1)
        else:
            axes[row, 1].imshow(_scaled(amap), cmap="hot")
        axes[row, 1].set_title(map_name, fontsize=7)
        for ax in axes[row]:
            ax.axis("off")
    return _save(fig, Path(path))


def save_feature_map_grid(
    path: str | os.PathLike,
    images: Sequence[np.ndarray],
    features: Sequence[FeatureMaps],
    titles: Sequence[str],
    transpose: bool = False,
) -> Path:
    """Writes a grid with, per row, the input's channels (R, G, B or grey) then the chosen feature maps of each layer.

    Args:
        path: PNG file to write.
        images: channel-first inputs ``(C, H, W)``, in the batch order of ``features[k].maps``.
        features: from :func:`medkit.interpret.feature_maps`.
        titles: one row title per image.
        transpose: see :func:`display_image`.
    """
    if len(images) != len(titles) or not images or any(f.maps.shape[0] != len(images) for f in features):
        raise ValueError(f"need one title and one feature map row per image, got {len(images)} images")
    channel_names = ["R", "G", "B"] if images[0].shape[0] == 3 else [f"channel {c}" for c in range(images[0].shape[0])]
    columns = len(channel_names) + sum(len(f.channels) for f in features)
    plt = _pyplot()
    fig, axes = plt.subplots(len(images), columns, figsize=(1.4 * columns, 1.9 * len(images)), squeeze=False)
    for row, (image, title) in enumerate(zip(images, titles)):
        panels = [(np.asarray(image[c], dtype=float), name, "gray") for c, name in enumerate(channel_names)]
        for f in features:
            panels += [(f.maps[row, i].numpy(), f"conv {f.layer} ch {c}", "viridis") for i, c in enumerate(f.channels)]
        for col, (plane, name, cmap) in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(_scaled(plane.T if transpose else plane), cmap=cmap)
            ax.set_title(f"{title}\n{name}" if col == 0 else name, fontsize=6)
            ax.axis("off")
    return _save(fig, Path(path))
