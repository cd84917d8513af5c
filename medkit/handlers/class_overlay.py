"""Colour overlays of multi-class segmentations: ground truth and prediction blended onto each frame."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from PIL import Image

__all__ = ["PALETTE", "ClassOverlaySaver", "overlay_classes"]

logger = logging.getLogger(__name__)

# Class colours (RGB) after the background: distinct on reddish tissue and on grey.
PALETTE = np.array(
    [[0, 200, 255], [255, 230, 0], [60, 255, 60], [255, 0, 255], [255, 128, 0], [0, 90, 255], [255, 255, 255]],
    dtype=np.float32,
)


def _indices(x: Any) -> np.ndarray:
    arr = x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)
    return (arr.argmax(0) if arr.shape[0] > 1 else arr[0]).round().astype(np.int64)


def overlay_classes(image: np.ndarray, classes: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blends class colours onto an RGB or grey image; class 0 (background) is left untouched.

    Args:
        image: ``(H, W, 3)`` or ``(H, W)`` in [0, 1].
        classes: ``(H, W)`` integer class indices.
        alpha: opacity of the class colours.

    Returns:
        uint8 ``(H, W, 3)``.
    """
    rgb = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image[..., :3]
    rgb = np.clip(rgb, 0.0, 1.0) * 255.0
    fg = classes > 0
    colours = PALETTE[(classes[fg] - 1) % len(PALETTE)]
    rgb[fg] = (1 - alpha) * rgb[fg] + alpha * colours
    return np.round(rgb).astype(np.uint8)


class ClassOverlaySaver:
    """Writes ``<output_dir>/<frame stem>_overlay.png``: the frame, ground truth overlay and prediction overlay.

    It reads channel-first ``image`` ``(3 or 1, H, W)`` scaled to [0, 1], and ``label``/``pred`` as class indices
    ``(1, H, W)`` or one-hot ``(C, H, W)``, from the decollated engine output, all at one size and in row-major
    ``(H, W)`` order.

    Args:
        output_dir: folder for the PNG files.
        num_images: at most this many frames (None: all).
        keys: the image, label and prediction keys.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        num_images: int | None = None,
        keys: tuple[str, str, str] = ("image", "label", "pred"),
    ) -> None:
        self.output_dir = Path(output_dir)
        self.num_images = num_images
        self.keys = keys
        self._written = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def _reset(self, engine: Engine) -> None:
        self._written = 0

    def __call__(self, engine: Engine) -> None:
        output = engine.state.output
        for item in output if isinstance(output, list) else []:
            if self.num_images is not None and self._written >= self.num_images:
                return
            image_t = item[self.keys[0]]
            image = image_t.detach().float().cpu().numpy() if isinstance(image_t, torch.Tensor) else image_t
            image = np.moveaxis(image[:3], 0, -1) if image.shape[0] >= 3 else image[0]
            panels = [
                overlay_classes(image, np.zeros(image.shape[:2], dtype=np.int64), 0.0),
                overlay_classes(image, _indices(item[self.keys[1]])),
                overlay_classes(image, _indices(item[self.keys[2]])),
            ]
            gap = np.full((panels[0].shape[0], 4, 3), 255, dtype=np.uint8)
            strip = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
            meta = getattr(image_t, "meta", {})
            stem = Path(str(meta.get("filename_or_obj", f"frame_{self._written:04d}"))).stem
            self.output_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(strip).save(self.output_dir / f"{stem}_overlay.png")
            self._written += 1
