from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose
from scipy import signal

from medkit.filters import gaussian_kernel
from medkit.transforms import Filter2D, Filter2Dd


@pytest.mark.parametrize(
    "kernel,kwargs,expected",
    [
        ("box", {"size": 3}, np.full((3, 3), 1 / 9)),
        ("gaussian", {"size": 5, "sigma": 1.5}, gaussian_kernel(5, 1.5)),
        ("sobel_vertical", {}, np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])),
        (np.eye(2), {}, np.eye(2)),
        (torch.ones(1, 3), {}, np.ones((1, 3))),
    ],
    ids=["box", "gaussian", "sobel", "numpy-array", "torch-array"],
)
def test_filters_each_channel_like_scipy(kernel, kwargs, expected):
    img = torch.rand(2, 9, 12)
    out = Filter2D(kernel, **kwargs)(img)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 9, 12) and out.dtype == torch.float32
    for c in range(2):
        want = signal.correlate2d(img[c].double().numpy(), expected, mode="same")
        np.testing.assert_allclose(out[c].numpy(), want, rtol=1e-5, atol=1e-6)


def test_valid_mode_and_numpy_uint8_input():
    img = np.full((1, 6, 7), 255, np.uint8)
    out = Filter2D("box", mode="valid", size=3)(img)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (1, 4, 5)
    np.testing.assert_allclose(out, 255.0, rtol=1e-6)


def test_dict_version_keeps_metadata_and_other_keys():
    img = MetaTensor(torch.rand(1, 8, 8, dtype=torch.float64), meta={"filename_or_obj": "cell.png"})
    label = torch.zeros(1, 8, 8)
    pipeline = Compose([Filter2Dd(keys="image", kernel="gaussian", sigma=1.0)])
    out = pipeline({"image": img, "label": label})
    assert isinstance(out["image"], MetaTensor) and out["image"].meta["filename_or_obj"] == "cell.png"
    assert out["image"].dtype == torch.float64 and out["label"] is label
    assert not torch.equal(out["image"].as_tensor(), img.as_tensor())


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"kernel": "laplace"}, "'laplace'"),
        ({"kernel": np.ones(3)}, r"\(3,\)"),
        ({"kernel": "box", "mode": "full"}, "'full'"),
        ({"kernel": np.ones((2, 2)), "size": 3}, "size"),
    ],
    ids=["unknown-kernel", "1d-kernel", "bad-mode", "kwargs-with-array"],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Filter2D(**kwargs)


def test_rejects_3d_volumes():
    with pytest.raises(ValueError, match=r"\(1, 4, 4, 4\)"):
        Filter2D("box")(torch.zeros(1, 4, 4, 4))
