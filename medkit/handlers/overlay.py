"""Per-image error overlays for binary segmentation: true positives, false positives and misses on the image."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from ignite.engine import Engine, Events
from PIL import Image

from medkit.utils import atomic_path

__all__ = ["OVERLAY_COLOURS", "SegmentationOverlaySaver", "error_overlay"]

logger = logging.getLogger(__name__)

# true positive green, false positive red, false negative (missed) blue
OVERLAY_COLOURS = {"tp": (0, 200, 0), "fp": (255, 40, 40), "fn": (40, 120, 255)}


def _grey(image: np.ndarray) -> np.ndarray:
    """Channel-first image -> (H', W') grey in [0, 1], contrast-stretched between its 1st and 99th percentiles."""
    grey = image.mean(axis=0) if image.ndim == 3 else image
    lo, hi = np.percentile(grey, (1, 99))
    return np.clip((grey - lo) / max(hi - lo, 1e-8), 0.0, 1.0)


def error_overlay(
    image: np.ndarray, label: np.ndarray, pred: np.ndarray, fov: np.ndarray | None = None, threshold: float = 0.5
) -> np.ndarray:
    """Colours true positives, false positives and false negatives of ``pred`` on a grey copy of ``image``.

    Args:
        image: ``(C, H, W)`` or ``(H, W)`` intensities (any range).
        label: ``(H, W)`` or ``(1, H, W)`` binary ground truth.
        pred: the same shape as ``label``: probabilities or a binary mask (``> threshold`` is foreground).
        fov: optional field-of-view mask; pixels outside it are darkened and never coloured.
        threshold: foreground threshold for ``pred``.

    Returns:
        uint8 ``(H, W, 3)`` RGB, coloured as in :data:`OVERLAY_COLOURS`.
    """
    label, pred = np.squeeze(label) > 0.5, np.squeeze(pred) > threshold
    if label.shape != pred.shape:
        raise ValueError(f"label shape {label.shape} differs from pred shape {pred.shape}")
    inside = np.ones_like(label) if fov is None else np.squeeze(fov) > 0.5
    rgb = np.repeat(_grey(np.asarray(image, dtype=np.float32))[..., None], 3, axis=-1) * 255.0
    rgb[~inside] *= 0.3
    for name, where in (("tp", pred & label), ("fp", pred & ~label), ("fn", ~pred & label)):
        rgb[where & inside] = OVERLAY_COLOURS[name]
    return rgb.astype(np.uint8)


def _numpy(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)


class OverlaySaverBase:
    """Base of handlers that save an RGB overlay per evaluated image as ``<output_dir>/<image stem>_overlay.png``.

    ``_reset`` runs at ``STARTED`` and the handler itself at every ``ITERATION_COMPLETED``; ``_saved`` counts the PNGs
    saved in the current run.
    """

    def __init__(self, output_dir: str | os.PathLike) -> None:
        self.output_dir = Path(output_dir)
        self._saved = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def _reset(self, engine: Engine) -> None:
        self._saved = 0

    def _save(self, rgb: np.ndarray, image: object, fallback: str) -> None:
        """Saves ``rgb`` under the stem of ``image``'s source file (``fallback`` when it has none)."""
        meta = getattr(image, "meta", {})
        stem = Path(str(meta.get("filename_or_obj", fallback))).name.split(".")[0]
        with atomic_path(self.output_dir / f"{stem}_overlay.png") as tmp:
            Image.fromarray(rgb).save(tmp)
        self._saved += 1


class SegmentationOverlaySaver(OverlaySaverBase):
    """Writes ``<output_dir>/<image stem>_overlay.png`` (see :func:`error_overlay`) for each evaluated image.

    Reads channel-first 2D ``image``, ``label``, ``pred`` and, optionally, ``fov`` entries of the decollated engine
    output. Images loaded by MONAI's ``PILReader`` are laid out ``(C, W, H)``; they are transposed back, so the PNG
    has the input's size and orientation.

    Args:
        output_dir: folder for the PNGs (created if missing).
        keys: the image, label, prediction and FOV keys; set the FOV key to ``None`` when there is none.
        threshold: foreground threshold for ``pred``.
        max_images: stop after this many images (``None``: all).
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        keys: tuple[str, str, str, str | None] = ("image", "label", "pred", "fov"),
        threshold: float = 0.5,
        max_images: int | None = None,
    ) -> None:
        super().__init__(output_dir)
        self.keys = keys
        self.threshold = threshold
        self.max_images = max_images

    def __call__(self, engine: Engine) -> None:
        output = engine.state.output
        image_key, label_key, pred_key, fov_key = self.keys
        for item in output if isinstance(output, list) else []:
            if self.max_images is not None and self._saved >= self.max_images:
                return
            planes = [_numpy(item[k]) for k in (image_key, label_key, pred_key)]
            fov = _numpy(item[fov_key]) if fov_key and fov_key in item else None
            swap = lambda a: None if a is None else np.swapaxes(a, -1, -2)  # noqa: E731
            overlay = error_overlay(*(swap(p) for p in planes), fov=swap(fov), threshold=self.threshold)
            self._save(overlay, item[image_key], f"image_{self._saved:03d}")
        logger.debug("%d overlays written to %s", self._saved, self.output_dir)
