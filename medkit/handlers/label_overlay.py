"""Colour overlays of class-index label maps on images, and a handler that saves them for evaluated samples."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from PIL import Image

__all__ = ["DEFAULT_PALETTE", "LabelOverlaySaver", "colour_overlay", "to_label_map"]

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


def to_label_map(x: Any) -> np.ndarray:
    """A ``(H, W)`` int array from a class-index ``(1, H, W)`` / ``(H, W)`` map or a one-hot ``(C, H, W)`` tensor."""
    array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if array.ndim == 3:
        array = array[0] if array.shape[0] == 1 else array.argmax(axis=0)
    if array.ndim != 2:
        raise ValueError(f"expected a 2D label map, a (1, H, W) map or a (C, H, W) one-hot array, got {array.shape}")
    return np.rint(array).astype(np.int64)


def _display_rgb(image: Any) -> np.ndarray:
    """A channel-first image of any range as ``(H, W, 3)`` uint8, min-max scaled for display."""
    array = image.detach().float().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image, float)
    if array.ndim == 2:
        array = array[None]
    array = np.repeat(array, 3, axis=0) if array.shape[0] == 1 else array[:3]
    low, high = float(array.min()), float(array.max())
    array = (array - low) / (high - low) if high > low else np.zeros_like(array)
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


class LabelOverlaySaver:
    """Saves ``<stem>_overlay.png`` for the first ``num_images`` samples: image | ground truth | prediction.

    The ground truth and the prediction are drawn in colour over the image (:func:`colour_overlay`). Entries are read
    from the decollated engine output (``image`` channel-first, ``label``/``pred`` as class-index maps or one-hot);
    arrays loaded by MONAI's ``PILReader`` are ``(W, H)`` and are transposed back (``transpose=True``). The colour of
    each class is written to ``legend.json`` next to the images.

    Args:
        output_dir: folder for the PNGs.
        class_names: class names, background first; only used for the legend.
        num_images: how many samples to save.
        alpha: opacity of the class colours.
        scale: integer upscaling of the saved PNGs (nearest neighbour), so small images stay readable.
        transpose: swap the two spatial axes before saving.
        keys: the image, label and prediction keys.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: Sequence[str] | None = None,
        num_images: int = 8,
        alpha: float = 0.5,
        scale: int = 4,
        transpose: bool = True,
        keys: tuple[str, str, str] = ("image", "label", "pred"),
    ) -> None:
        if num_images < 1 or scale < 1:
            raise ValueError(f"num_images and scale must be >= 1, got {num_images} and {scale}")
        self.output_dir = Path(output_dir)
        self.class_names = list(class_names) if class_names is not None else None
        self.num_images, self.alpha, self.scale, self.transpose, self.keys = num_images, alpha, scale, transpose, keys
        self._saved = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(
            Events.COMPLETED, lambda _: logger.info("%d overlays written to %s", self._saved, self.output_dir)
        )

    def _reset(self, engine: Engine) -> None:
        self._saved = 0
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.class_names is not None:
            legend = {n: list(DEFAULT_PALETTE[(i - 1) % len(DEFAULT_PALETTE)]) for i, n in enumerate(self.class_names)}
            legend[self.class_names[0]] = None  # background: not coloured
            (self.output_dir / "legend.json").write_text(json.dumps(legend, indent=2))

    def __call__(self, engine: Engine) -> None:
        output = engine.state.output
        for item in output if isinstance(output, list) else []:
            if self._saved >= self.num_images:
                return
            image = _display_rgb(item[self.keys[0]])
            label, pred = to_label_map(item[self.keys[1]]), to_label_map(item[self.keys[2]])
            if self.transpose:
                image, label, pred = image.transpose(1, 0, 2), label.T, pred.T
            panel = np.concatenate(
                [image, colour_overlay(image, label, alpha=self.alpha), colour_overlay(image, pred, alpha=self.alpha)],
                axis=1,
            )
            panel = panel.repeat(self.scale, axis=0).repeat(self.scale, axis=1)
            meta = getattr(item[self.keys[0]], "meta", {})
            stem = Path(str(meta.get("filename_or_obj", f"sample_{self._saved:04d}"))).name.split(".")[0]
            Image.fromarray(panel).save(self.output_dir / f"{stem}_overlay.png")
            self._saved += 1
