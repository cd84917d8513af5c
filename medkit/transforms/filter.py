"""Classic 2D filtering (blur, edges) as MONAI transforms, so bundle configs can name a kernel."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform, Transform
from monai.utils import convert_data_type, convert_to_dst_type

from medkit.filters import discrete_2d_convolution, get_kernel

__all__ = ["Filter2D", "Filter2Dd"]

logger = logging.getLogger(__name__)


class Filter2D(Transform):
    """Filters each channel of a channel-first 2D image with :func:`medkit.filters.discrete_2d_convolution`.

    The kernel is an array or a name from :data:`medkit.filters.KERNELS` (``"box"``, ``"gaussian"``,
    ``"sobel_horizontal"``, ``"sobel_vertical"``) built with ``kernel_kwargs``. The output has the input's type,
    device and MetaTensor metadata, and the input's floating dtype (float32 for integer input).

    Shape contract:
        input ``(C, H, W)``; output ``(C, H, W)`` with ``mode="same"``, ``(C, H - kh + 1, W - kw + 1)`` with
        ``mode="valid"`` (the affine is not shifted for the crop, so prefer ``"same"`` in pipelines).

    Args:
        kernel: kernel name or 2D array.
        mode: ``"same"`` (zero padding, default) or ``"valid"``.
        kernel_kwargs: arguments for a named kernel, for example ``size=5`` or ``sigma=2.0``.

    Example:
        >>> Filter2D("gaussian", sigma=2.0)(torch.rand(1, 64, 64)).shape
        torch.Size([1, 64, 64])
    """

    def __init__(self, kernel: str | np.ndarray | torch.Tensor, mode: str = "same", **kernel_kwargs) -> None:
        if isinstance(kernel, str):
            self.kernel = get_kernel(kernel, **kernel_kwargs)
        else:
            if kernel_kwargs:
                raise ValueError(f"kernel_kwargs {sorted(kernel_kwargs)} only apply to a named kernel")
            self.kernel = convert_data_type(kernel, np.ndarray)[0]
        if self.kernel.ndim != 2:
            raise ValueError(f"kernel must be 2D, got shape {self.kernel.shape}")
        if mode not in ("same", "valid"):
            raise ValueError(f"mode must be 'same' or 'valid', got {mode!r}")
        self.mode = mode

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        if img.ndim != 3:
            raise ValueError(f"Filter2D expects a channel-first 2D image (C, H, W), got shape {tuple(img.shape)}")
        array = convert_data_type(img, np.ndarray)[0]
        out = np.stack([discrete_2d_convolution(channel, self.kernel, self.mode) for channel in array])
        dtype = img.dtype if _is_floating(img) else torch.float32
        return convert_to_dst_type(out, img, dtype=dtype)[0]


def _is_floating(img: NdarrayOrTensor) -> bool:
    if isinstance(img, torch.Tensor):
        return img.is_floating_point()
    return np.issubdtype(img.dtype, np.floating)


class Filter2Dd(MapTransform):
    """Dictionary version of :class:`Filter2D`.

    Example config entry:
        ``{"_target_": "medkit.transforms.Filter2Dd", "keys": "image", "kernel": "gaussian", "sigma": 1.5}``
    """

    def __init__(
        self,
        keys: KeysCollection,
        kernel: str | np.ndarray | torch.Tensor,
        mode: str = "same",
        allow_missing_keys: bool = False,
        **kernel_kwargs,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.filter = Filter2D(kernel, mode, **kernel_kwargs)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.filter(d[key])
        return d
