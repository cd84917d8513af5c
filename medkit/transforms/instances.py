"""Instance segmentation transforms: label images from mask files, foreground + boundary training targets, and
marker-controlled watershed that turns the network's foreground and boundary maps into one label per object.

Label images are channel-first ``(1, H, W)`` with 0 for background and one positive integer per object.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from skimage.measure import label as connected_components
from skimage.morphology import binary_dilation, disk, remove_small_objects
from skimage.segmentation import find_boundaries, relabel_sequential, watershed

from medkit.data.checks.images import check_mask_values, read_label_values
from medkit.transforms.io import LoadMaskUnion

__all__ = [
    "InstanceTarget",
    "InstanceTargetd",
    "LoadInstanceMask",
    "LoadInstanceMaskd",
    "WatershedInstances",
    "WatershedInstancesd",
]

logger = logging.getLogger(__name__)


class LoadInstanceMask(LoadMaskUnion):
    """Loads the objects of one image as a label image ``(1, W, H)`` (laid out like MONAI's ``PILReader``).

    - Several files (the DSB2018 layout: one mask per nucleus): file ``i`` becomes object ``i + 1``; where masks
      overlap, the later file wins.
    - One file holding more than one positive value: a label image already; its values are kept.
    - One binary file (a union mask, as in the flat layout): its 8-connected components become the objects, so
      objects that touch in the file are one object here (the flat layout cannot tell them apart).

    Raises:
        ValueError: naming the file, as :class:`LoadMaskUnion` does (unreadable, bad values, sizes that differ).
    """

    def _label_file(self, path: str) -> np.ndarray:
        if path.lower().endswith((".nii", ".nii.gz")):
            return self._read(path)[0].astype(np.int32)  # binary: foreground of the NIfTI mask
        values, _ = read_label_values(path, "mask")
        if values.ndim == 3:
            values = values.max(axis=-1)
        check_mask_values(values, path)
        return values.T[None].astype(np.int32)

    def __call__(self, paths: str | os.PathLike | Sequence[str | os.PathLike]) -> MetaTensor:
        files = [str(paths)] if isinstance(paths, (str, os.PathLike)) else [str(p) for p in paths]
        if not files:
            raise ValueError("LoadInstanceMask got an empty list of mask files")
        if len(files) == 1:
            labels = self._label_file(files[0])
            if len(np.unique(labels[labels > 0])) <= 1:
                labels = connected_components(labels > 0, connectivity=labels.ndim - 1).astype(np.int32)
        else:
            labels = None
            for i, path in enumerate(files, start=1):
                mask, _ = self._read(path)
                if labels is None:
                    labels = np.zeros(mask.shape, np.int32)
                elif mask.shape != labels.shape:
                    raise ValueError(
                        f"{path}: mask shape {mask.shape[1:]} differs from {files[0]} shape {labels.shape[1:]}"
                    )
                labels[mask] = i
        out = MetaTensor(torch.from_numpy(labels).to(self.dtype))
        out.meta["filename_or_obj"] = files[0]
        return out


class LoadInstanceMaskd(MapTransform):
    """Dictionary version of :class:`LoadInstanceMask`."""

    def __init__(self, keys: KeysCollection, dtype: torch.dtype = torch.float32, allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadInstanceMask(dtype=dtype)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key])
        return d


def _numpy_2d(img: torch.Tensor | np.ndarray, channels: int, what: str) -> np.ndarray:
    array = img.detach().cpu().float().numpy() if isinstance(img, torch.Tensor) else np.asarray(img, dtype=np.float32)
    if array.ndim != 3 or array.shape[0] != channels:
        raise ValueError(f"{what} must be channel-first ({channels}, H, W), got shape {tuple(array.shape)}")
    return array


class InstanceTarget(Transform):
    """Label image ``(1, H, W)`` to the two-channel training target ``(2, H, W)``: foreground and object boundaries.

    The boundary channel marks each object's own rim (``skimage.segmentation.find_boundaries``, mode ``inner``)
    thickened to ``boundary_width`` pixels inside the object, so two touching nuclei are parted by a band of
    ``2 * boundary_width`` boundary pixels that a network can learn and :class:`WatershedInstances` can cut along.

    Args:
        boundary_width: rim thickness in pixels (1 or more).
    """

    def __init__(self, boundary_width: int = 1) -> None:
        if boundary_width < 1:
            raise ValueError(f"boundary_width must be at least 1, got {boundary_width}")
        self.boundary_width = boundary_width

    def __call__(self, labels: torch.Tensor | np.ndarray) -> torch.Tensor:
        lab = np.rint(_numpy_2d(labels, 1, "InstanceTarget labels")[0]).astype(np.int32)
        foreground = lab > 0
        rim = find_boundaries(lab, mode="inner") & foreground
        if self.boundary_width > 1:
            rim = binary_dilation(rim, disk(self.boundary_width - 1)) & foreground
        target = torch.from_numpy(np.stack([foreground, rim]).astype(np.float32))
        if isinstance(labels, MetaTensor):
            return MetaTensor(target, meta=dict(labels.meta), applied_operations=list(labels.applied_operations))
        return target


class InstanceTargetd(MapTransform):
    """Dictionary version of :class:`InstanceTarget`."""

    def __init__(self, keys: KeysCollection, boundary_width: int = 1, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.target = InstanceTarget(boundary_width)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.target(d[key])
        return d


class WatershedInstances(Transform):
    """Foreground and boundary probabilities ``(2, H, W)`` to a label image ``(1, H, W)`` (int32).

    Markers are the connected parts of the object interiors (foreground above ``threshold`` and rim below
    ``rim_threshold``) of at least ``min_marker_size`` pixels; a watershed on the boundary probability grows them over
    the foreground (``skimage.segmentation.watershed`` with ``mask``), so touching nuclei split along the predicted
    boundary.
    Foreground parts that hold no marker (small objects that are all rim) keep one label each, and objects smaller
    than ``min_size`` pixels are removed.

    Args:
        threshold: probability above which a pixel is foreground.
        min_marker_size: smallest interior, in pixels, that seeds an object of its own.
        min_size: smallest object kept, in pixels.
        rim_threshold: rim probability at or above which a foreground pixel is not interior; lower values cut
            touching nuclei apart more readily; above 1, no pixel is rim and the objects are the connected
            components of the foreground.
    """

    def __init__(
        self, threshold: float = 0.5, min_marker_size: int = 4, min_size: int = 4, rim_threshold: float = 0.5
    ) -> None:
        self.threshold = threshold
        self.rim_threshold = rim_threshold
        self.min_marker_size = min_marker_size
        self.min_size = min_size

    def __call__(self, probs: torch.Tensor | np.ndarray) -> torch.Tensor:
        fg_prob, boundary_prob = _numpy_2d(probs, 2, "WatershedInstances input")
        foreground = fg_prob > self.threshold
        interior = foreground & (boundary_prob < self.rim_threshold)
        interior = remove_small_objects(interior, max_size=self.min_marker_size - 1)
        markers = connected_components(interior, connectivity=1)
        labels = watershed(boundary_prob, markers, mask=foreground)
        orphans = connected_components(foreground & (labels == 0), connectivity=2)
        labels = np.where(orphans > 0, orphans + labels.max(), labels)
        if self.min_size > 1:
            with warnings.catch_warnings():  # skimage warns when the image holds a single object
                warnings.simplefilter("ignore", UserWarning)
                labels = remove_small_objects(labels, max_size=self.min_size - 1)
        labels = relabel_sequential(labels)[0]
        out = torch.from_numpy(labels[None].astype(np.int32))
        if isinstance(probs, MetaTensor):
            return MetaTensor(out, meta=dict(probs.meta))
        return out


class WatershedInstancesd(MapTransform):
    """Dictionary version of :class:`WatershedInstances`: reads ``keys`` (probabilities), writes ``output_keys``.

    Args:
        keys: the ``(2, H, W)`` probability entries.
        output_keys: where each label image goes (``pred_instances`` by default); same length as ``keys``.
        threshold: see :class:`WatershedInstances`.
        min_marker_size: see :class:`WatershedInstances`.
        min_size: see :class:`WatershedInstances`.
        rim_threshold: see :class:`WatershedInstances`.
    """

    def __init__(
        self,
        keys: KeysCollection,
        output_keys: KeysCollection = "pred_instances",
        threshold: float = 0.5,
        min_marker_size: int = 4,
        min_size: int = 4,
        rim_threshold: float = 0.5,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_keys = [output_keys] if isinstance(output_keys, str) else list(output_keys)
        if len(self.output_keys) != len(self.keys):
            raise ValueError(f"WatershedInstancesd: {len(self.keys)} keys but {len(self.output_keys)} output_keys")
        self.watershed = WatershedInstances(threshold, min_marker_size, min_size, rim_threshold)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key, out_key in self.key_iterator(d, self.output_keys):
            d[out_key] = self.watershed(d[key])
        return d
