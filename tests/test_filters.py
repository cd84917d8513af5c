from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import signal

from medkit.filters import (
    KERNELS,
    box_kernel,
    discrete_2d_convolution,
    gaussian_kernel,
    get_kernel,
    sobel_horizontal_kernel,
    sobel_vertical_kernel,
)

SHAPES = [((9, 11), (3, 3)), ((8, 7), (4, 2)), ((10, 10), (5, 4)), ((6, 13), (1, 6)), ((5, 5), (5, 5))]
SHAPE_IDS = ["odd-3x3", "even-4x2", "mixed-5x4", "row-1x6", "kernel-equals-image"]


def _random(image_shape, kernel_shape):
    rng = np.random.default_rng(0)
    return rng.normal(size=image_shape), rng.normal(size=kernel_shape)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("mode", ["valid", "same"])
@pytest.mark.parametrize("image_shape,kernel_shape", SHAPES, ids=SHAPE_IDS)
def test_matches_scipy_correlate2d_and_torch_conv2d(image_shape, kernel_shape, mode):
    image, kernel = _random(image_shape, kernel_shape)
    ours = discrete_2d_convolution(image, kernel, mode)
    np.testing.assert_allclose(ours, signal.correlate2d(image, kernel, mode=mode), atol=1e-12)
    conv = F.conv2d(torch.from_numpy(image)[None, None], torch.from_numpy(kernel)[None, None], padding=mode)[0, 0]
    np.testing.assert_allclose(ours, conv.numpy(), atol=1e-12)
    kh, kw = kernel_shape
    expected = image_shape if mode == "same" else (image_shape[0] - kh + 1, image_shape[1] - kw + 1)
    assert ours.shape == expected


@pytest.mark.parametrize("mode", ["valid", "same"])
@pytest.mark.parametrize("image_shape,kernel_shape", SHAPES, ids=SHAPE_IDS)
def test_is_convolve2d_with_a_flipped_kernel(image_shape, kernel_shape, mode):
    image, kernel = _random(image_shape, kernel_shape)
    ours = discrete_2d_convolution(image, kernel, mode)
    flipped = kernel[::-1, ::-1]
    kh, kw = kernel_shape
    if mode == "valid" or (kh % 2 and kw % 2):
        np.testing.assert_allclose(ours, signal.convolve2d(image, flipped, mode=mode), atol=1e-12)
    # in every case ours is a crop of the full convolution; for even kernels convolve2d's "same" crop starts
    # (kh - 1) // 2 in, ours (like torch's padding="same") starts kh // 2 in
    full = signal.convolve2d(image, flipped, mode="full")
    top, left = (kh - 1, kw - 1) if mode == "valid" else (kh // 2, kw // 2)
    np.testing.assert_allclose(ours, full[top : top + ours.shape[0], left : left + ours.shape[1]], atol=1e-12)


def test_hand_computed_2x2():
    image = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    kernel = np.array([[1, 0], [0, -1]])
    # S(i, j) = I(i, j) - I(i + 1, j + 1): no flip, unlike the mathematical convolution
    np.testing.assert_array_equal(discrete_2d_convolution(image, kernel), [[-4, -4], [-4, -4]])
    assert discrete_2d_convolution(image, kernel).dtype == np.float64


def test_uint8_image_does_not_overflow():
    image = np.full((4, 4), 200, np.uint8)
    out = discrete_2d_convolution(image, np.ones((2, 2), np.uint8))
    np.testing.assert_array_equal(out, np.full((3, 3), 800.0))


def test_float32_stays_float32():
    out = discrete_2d_convolution(np.ones((5, 5), np.float32), box_kernel(3).astype(np.float32), "same")
    assert out.dtype == np.float32


@pytest.mark.parametrize(
    "image,kernel,mode,error,match",
    [
        (np.ones((4, 4)), np.ones((2, 2)), "full", ValueError, "'full'"),
        (np.ones((4, 4, 3)), np.ones((2, 2)), "valid", ValueError, r"image .*\(4, 4, 3\)"),
        (np.ones((4, 4)), np.ones(3), "valid", ValueError, r"kernel .*\(3,\)"),
        (np.ones((4, 4)), np.ones((0, 2)), "same", ValueError, r"\(0, 2\)"),
        (np.ones((3, 4)), np.ones((4, 2)), "valid", ValueError, r"\(4, 2\) is larger than image \(3, 4\)"),
        (np.ones((4, 4), complex), np.ones((2, 2)), "valid", TypeError, "complex"),
        (np.array([["a"]]), np.ones((1, 1)), "valid", TypeError, "<U1"),
    ],
    ids=["bad-mode", "3d-image", "1d-kernel", "empty-kernel", "kernel-too-big", "complex", "strings"],
)
def test_bad_input(image, kernel, mode, error, match):
    with pytest.raises(error, match=match):
        discrete_2d_convolution(image, kernel, mode)


def test_same_mode_allows_kernel_larger_than_image():
    image, kernel = np.arange(6.0).reshape(2, 3), np.ones((5, 4))
    np.testing.assert_allclose(
        discrete_2d_convolution(image, kernel, "same"), signal.correlate2d(image, kernel, "same")
    )


@pytest.mark.parametrize(
    "kernel,shape",
    [
        (box_kernel(3), (3, 3)),
        (box_kernel((2, 5)), (2, 5)),
        (gaussian_kernel(sigma=1.0), (7, 7)),
        (gaussian_kernel(4, 0.8), (4, 4)),
    ],
    ids=["box3", "box2x5", "gauss-auto", "gauss-even"],
)
def test_blur_kernels_sum_to_one_and_keep_flat_images(kernel, shape):
    assert kernel.shape == shape
    assert kernel.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(discrete_2d_convolution(np.full((9, 9), 3.0), kernel), 3.0)


def test_gaussian_is_symmetric_and_peaks_at_the_centre():
    kernel = gaussian_kernel(5, sigma=(1.0, 2.0))
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1])
    assert kernel.argmax() == 12
    assert kernel[2, 0] > kernel[0, 2]  # sigma_x > sigma_y spreads the mass along x


def test_sobel_kernels_find_the_right_edges():
    step_right = np.tile(np.repeat([0.0, 1.0], 4), (8, 1))  # dark left, bright right: one vertical edge
    vertical = discrete_2d_convolution(step_right, sobel_vertical_kernel())
    horizontal = discrete_2d_convolution(step_right, sobel_horizontal_kernel())
    assert vertical.max() == 4.0 and vertical.min() == 0.0
    np.testing.assert_array_equal(vertical[:, 2:4], 4.0)
    np.testing.assert_array_equal(horizontal, 0.0)
    np.testing.assert_array_equal(sobel_horizontal_kernel(), sobel_vertical_kernel().T)
    assert sobel_vertical_kernel().sum() == 0


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: box_kernel(0), "size"),
        (lambda: box_kernel((3, 3, 3)), "size"),
        (lambda: gaussian_kernel(sigma=0.0), "sigma"),
        (lambda: get_kernel("laplace"), "'laplace'"),
    ],
    ids=["box-zero", "box-3d", "gauss-sigma", "unknown-name"],
)
def test_bad_kernel_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_get_kernel_builds_every_named_kernel():
    assert sorted(KERNELS) == ["box", "gaussian", "sobel_horizontal", "sobel_vertical"]
    np.testing.assert_array_equal(get_kernel("box", size=2), np.full((2, 2), 0.25))
    for name in KERNELS:
        assert get_kernel(name).ndim == 2
