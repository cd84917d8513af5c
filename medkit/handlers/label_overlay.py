"""Colour overlays of class-index label maps on images, and a handler that saves them for evaluated samples."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events

from medkit.handlers.overlay import OverlaySaverBase

__all__ = ["DEFAULT_PALETTE", "TISSUE_PALETTE", "LabelOverlaySaver", "colour_overlay", "to_label_map"]

logger = logging.getLogger(__name__)

# Distinct colours for classes 1, 2, ... (background is never coloured); cycled when there are more classes.
DEFAULT_PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (255, 225, 25),
    (145, 30, 180),
    (245, 130, 48),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (0, 128, 128),
)

# Colours for classes 1, 2, ... that stand out on reddish tissue and on grey (cyan, yellow, green, magenta, ...).
TISSUE_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 200, 255),
    (255, 230, 0),
    (60, 255, 60),
    (255, 0, 255),
    (255, 128, 0),
    (0, 90, 255),
    (255, 255, 255),
)


def to_label_map(x: Any) -> np.ndarray:
    """A ``(H, W)`` int array from a class-index ``(1, H, W)`` / ``(H, W)`` map or a one-hot ``(C, H, W)`` tensor."""
    array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if array.ndim == 3:
        array = array[0] if array.shape[0] == 1 else array.argmax(axis=0)
    if array.ndim != 2:
        raise ValueError(f"expected a 2D label map, a (1, H, W) map or a (C, H, W) one-hot array, got {array.shape}")
    return np.rint(array).astype(np.int64)


def _display_rgb(image: Any, intensity_range: Sequence[float] | None = None) -> np.ndarray:
    """A channel-first image as ``(H, W, 3)`` uint8: ``intensity_range`` ``(low, high)`` maps to 0-255 (values outside
    are clipped); ``None`` min-max scales the image for display."""
    array = image.detach().float().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image, float)
    if array.ndim == 2:
        array = array[None]
    array = np.repeat(array, 3, axis=0) if array.shape[0] == 1 else array[:3]
    low, high = (float(array.min()), float(array.max())) if intensity_range is None else map(float, intensity_range)
    array = np.clip((array - low) / (high - low), 0, 1) if high > low else np.zeros_like(array)
    return np.round(np.moveaxis(array, 0, -1) * 255).astype(np.uint8)


def colour_overlay(
    image: np.ndarray, label: np.ndarray, palette: Sequence[Sequence[int]] = DEFAULT_PALETTE, alpha: float = 0.5
) -> np.ndarray:
    """Blends class colours into an RGB image; class 0 (background) is left as is.

    Args:
        image: ``(H, W, 3)`` uint8.
        label: ``(H, W)`` class indices.
        palette: RGB colours for classes 1, 2, ...; cycled when there are more classes.
        alpha: opacity of the class colour.

    Returns:
        ``(H, W, 3)`` uint8.
    """
    if image.shape[:2] != label.shape:
        raise ValueError(f"image shape {image.shape[:2]} and label shape {label.shape} differ")
    colours = np.asarray(palette, dtype=np.float64)
    out = image.astype(np.float64)
    fg = label > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colours[(label[fg] - 1) % len(colours)]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


class LabelOverlaySaver(OverlaySaverBase):
    """Saves ``<stem>_overlay.png`` for the first ``num_images`` samples: image | ground truth | prediction.

    The ground truth and the prediction are drawn in colour over the image (:func:`colour_overlay`). Entries are read
    from the decollated engine output (``image`` channel-first, ``label``/``pred`` as class-index maps or one-hot);
    arrays loaded by MONAI's ``PILReader`` are ``(W, H)`` and are transposed back (``transpose=True``). The colour of
    each class is written to ``legend.json`` next to the images.

    Args:
        output_dir: folder for the PNGs.
        class_names: class names, background first; only used for the legend.
        num_images: how many samples to save (``None``: all).
        alpha: opacity of the class colours.
        scale: integer upscaling of the saved PNGs (nearest neighbour), so small images stay readable.
        transpose: swap the two spatial axes before saving (``False`` for row-major ``(H, W)`` arrays).
        keys: the image, label and prediction keys.
        palette: RGB colours of classes 1, 2, ... (:data:`DEFAULT_PALETTE`, or :data:`TISSUE_PALETTE` for
            endoscopy frames).
        intensity_range: image values shown as black and white, such as ``(0, 1)`` for scaled frames; ``None``
            min-max scales each image.
        gap: width in pixels of the white gap between the three panels.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: Sequence[str] | None = None,
        num_images: int | None = 8,
        alpha: float = 0.5,
        scale: int = 4,
        transpose: bool = True,
        keys: tuple[str, str, str] = ("image", "label", "pred"),
        palette: Sequence[Sequence[int]] = DEFAULT_PALETTE,
        intensity_range: Sequence[float] | None = None,
        gap: int = 0,
    ) -> None:
        if (num_images is not None and num_images < 1) or scale < 1 or gap < 0:
            raise ValueError(f"num_images and scale must be >= 1 and gap >= 0, got {num_images}, {scale} and {gap}")
        super().__init__(output_dir)
        self.class_names = list(class_names) if class_names is not None else None
        self.num_images, self.alpha, self.scale, self.transpose, self.keys = num_images, alpha, scale, transpose, keys
        self.palette = [tuple(int(v) for v in colour) for colour in palette]
        self.intensity_range = intensity_range
        self.gap = gap

    def attach(self, engine: Engine) -> None:
        super().attach(engine)
        engine.add_event_handler(
            Events.COMPLETED, lambda _: logger.info("%d overlays written to %s", self._saved, self.output_dir)
        )

    def _reset(self, engine: Engine) -> None:
        super()._reset(engine)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.class_names is not None:
            legend = {n: list(self.palette[(i - 1) % len(self.palette)]) for i, n in enumerate(self.class_names)}
            legend[self.class_names[0]] = None  # background: not coloured
            (self.output_dir / "legend.json").write_text(json.dumps(legend, indent=2))

    def __call__(self, engine: Engine) -> None:
        output = engine.state.output
        for item in output if isinstance(output, list) else []:
            if self.num_images is not None and self._saved >= self.num_images:
                return
            image = _display_rgb(item[self.keys[0]], self.intensity_range)
            label, pred = to_label_map(item[self.keys[1]]), to_label_map(item[self.keys[2]])
            if self.transpose:
                image, label, pred = image.transpose(1, 0, 2), label.T, pred.T
            gap = np.full((image.shape[0], self.gap, 3), 255, dtype=np.uint8)
            panels = [colour_overlay(image, m, self.palette, self.alpha) for m in (label, pred)]
            panel = np.concatenate([image, gap, panels[0], gap, panels[1]], axis=1)
            panel = panel.repeat(self.scale, axis=0).repeat(self.scale, axis=1)
            self._save(panel, item[self.keys[0]], f"sample_{self._saved:04d}")
