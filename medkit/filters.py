"""Classic 2D image filtering: the discrete convolution CNN layers compute, and the kernels it is taught with.

CNN libraries call it convolution, but what they compute is the cross-correlation
``S(i, j) = sum_m sum_n I(i + m, j + n) K(m, n)``, which differs from the mathematical convolution only by the
kernel being flipped. :func:`discrete_2d_convolution` computes exactly that sum with NumPy stride tricks: a
read-only view of every kernel-sized window of the image, contracted with the kernel in one ``einsum``.

Reference:
    I. Goodfellow, Y. Bengio, A. Courville, "Deep Learning", MIT Press 2016, chapter 9.1 (equation 9.6),
    https://www.deeplearningbook.org/contents/convnets.html.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike

from medkit.utils import build_by_name

__all__ = [
    "KERNELS",
    "box_kernel",
    "discrete_2d_convolution",
    "gaussian_kernel",
    "get_kernel",
    "sobel_horizontal_kernel",
    "sobel_vertical_kernel",
]

logger = logging.getLogger(__name__)

_MODES = ("valid", "same")


def discrete_2d_convolution(image: ArrayLike, kernel: ArrayLike, mode: str = "valid") -> np.ndarray:
    """The 2D cross-correlation ``S(i, j) = sum_m sum_n I(i + m, j + n) K(m, n)``, as CNN libraries compute it.

    Matches ``scipy.signal.correlate2d(image, kernel, mode)`` and ``torch.nn.functional.conv2d`` (with
    ``padding=mode``) for real inputs, and ``scipy.signal.convolve2d(image, kernel[::-1, ::-1], mode)`` in
    ``"valid"`` mode and for odd kernels. For even kernels in ``"same"`` mode, ``convolve2d`` centres the *flipped*
    kernel, so its result is shifted by one pixel along each even axis.

    Args:
        image: 2D array ``(H, W)``.
        kernel: 2D array ``(kh, kw)``, any sizes (odd or even).
        mode: ``"valid"``: only positions where the kernel fits inside the image, output
            ``(H - kh + 1, W - kw + 1)``; ``"same"``: the image is zero-padded so the output is ``(H, W)``, with the
            kernel's anchor at ``((kh - 1) // 2, (kw - 1) // 2)``, as in SciPy, PyTorch and TensorFlow.

    Returns:
        The filtered image, floating point (integer inputs give float64).

    Raises:
        ValueError: for a mode other than ``"valid"``/``"same"``, a non-2D or empty image or kernel, or (in
            ``"valid"`` mode) a kernel larger than the image; the message gives the offending value.
        TypeError: for complex or non-numeric input.
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    image = np.asarray(image)
    kernel = np.asarray(kernel)
    for name, arr in (("image", image), ("kernel", kernel)):
        if arr.ndim != 2 or arr.size == 0:
            raise ValueError(f"{name} must be a non-empty 2D array, got shape {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
            raise TypeError(f"{name} must be real-valued, got dtype {arr.dtype}")
    kh, kw = kernel.shape
    if mode == "valid" and (kh > image.shape[0] or kw > image.shape[1]):
        raise ValueError(f"kernel {kernel.shape} is larger than image {image.shape}; use mode='same'")

    dtype = np.result_type(image.dtype, kernel.dtype)
    if not np.issubdtype(dtype, np.floating):
        dtype = np.dtype(np.float64)  # integer sums (uint8 images) would overflow
    image = image.astype(dtype, copy=False)
    if mode == "same":
        # CNN libraries put an even kernel's extra row/column of padding after the image, not before it
        image = np.pad(image, (((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2)))
    windows = sliding_window_view(image, (kh, kw))  # (H', W', kh, kw) view, no copy
    # plain einsum walks the strided view in place; tensordot or optimize=True would copy it kh*kw times over
    return np.einsum("ijmn,mn->ij", windows, kernel.astype(dtype, copy=False))


def _size2(size: int | Sequence[int], name: str) -> tuple[int, int]:
    sizes = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(sizes) != 2 or any(int(s) != s or s < 1 for s in sizes):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {size!r}")
    return int(sizes[0]), int(sizes[1])


def box_kernel(size: int | Sequence[int] = 3) -> np.ndarray:
    """Box (mean) blur: a ``(kh, kw)`` array of ``1 / (kh * kw)``, summing to 1.

    Args:
        size: kernel size, an int for a square kernel or ``(kh, kw)``.
    """
    kh, kw = _size2(size, "size")
    return np.full((kh, kw), 1.0 / (kh * kw))


def gaussian_kernel(size: int | Sequence[int] | None = None, sigma: float | Sequence[float] = 1.0) -> np.ndarray:
    """Gaussian blur: ``exp(-(y^2 / 2 sigma_y^2 + x^2 / 2 sigma_x^2))`` sampled around the centre, summing to 1.

    Args:
        size: kernel size (int or ``(kh, kw)``); default ``2 * ceil(3 * sigma) + 1`` per axis, which holds 99.7%
            of the mass.
        sigma: standard deviation in pixels, one value or ``(sigma_y, sigma_x)``.
    """
    sigmas = (float(sigma), float(sigma)) if np.isscalar(sigma) else tuple(float(s) for s in sigma)
    if len(sigmas) != 2 or any(not s > 0 for s in sigmas):
        raise ValueError(f"sigma must be positive (one value or a pair), got {sigma!r}")
    if size is None:
        size = tuple(2 * math.ceil(3 * s) + 1 for s in sigmas)
    kh, kw = _size2(size, "size")
    # (size - 1) / 2 centres odd and even sizes alike
    y = np.exp(-0.5 * ((np.arange(kh) - (kh - 1) / 2) / sigmas[0]) ** 2)
    x = np.exp(-0.5 * ((np.arange(kw) - (kw - 1) / 2) / sigmas[1]) ** 2)
    kernel = np.outer(y, x)
    return kernel / kernel.sum()


def sobel_vertical_kernel() -> np.ndarray:
    """Sobel kernel for vertical edges (the x derivative): positive where intensity increases to the right."""
    return np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_horizontal_kernel() -> np.ndarray:
    """Sobel kernel for horizontal edges (the y derivative): positive where intensity increases downwards."""
    return sobel_vertical_kernel().T.copy()


KERNELS: dict[str, Callable[..., np.ndarray]] = {
    "box": box_kernel,
    "gaussian": gaussian_kernel,
    "sobel_horizontal": sobel_horizontal_kernel,
    "sobel_vertical": sobel_vertical_kernel,
}


def get_kernel(name: str, **kwargs) -> np.ndarray:
    """Builds the kernel ``name`` (one of :data:`KERNELS`) with ``kwargs``, for example ``get_kernel("box", size=5)``.

    Raises:
        ValueError: if ``name`` is unknown; the message lists the known names.
    """
    return build_by_name(KERNELS, name, "kernel", **kwargs)
