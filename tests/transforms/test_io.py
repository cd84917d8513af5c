from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from conftest import write_png
from monai.data import MetaTensor
from monai.transforms import LoadImage
from PIL import Image

from medkit.transforms import LoadMaskUnion, LoadMaskUniond, SaveLikeInput, SaveLikeInputd


def test_union_of_overlapping_and_rgb_masks(tmp_path: Path):
    a = np.zeros((6, 9), np.uint8)
    a[0:3, 0:3] = 255
    b = np.zeros((6, 9, 3), np.uint8)
    b[2:4, 2:6, 1] = 1  # an RGB mask with a non-255 foreground value
    paths = [write_png(tmp_path / "a.png", a), write_png(tmp_path / "b.png", b)]
    out = LoadMaskUniond(keys="label")({"label": paths})["label"]
    expected = np.zeros((6, 9), bool)
    expected[0:3, 0:3] = True
    expected[2:4, 2:6] = True
    np.testing.assert_array_equal(out[0].numpy().T, expected)
    assert out.meta["filename_or_obj"] == str(paths[0])


def test_union_names_mismatched_and_unreadable_files(tmp_path: Path):
    a = write_png(tmp_path / "a.png", np.zeros((6, 9), np.uint8))
    b = write_png(tmp_path / "b.png", np.zeros((6, 8), np.uint8))
    with pytest.raises(ValueError, match=r"b\.png: mask shape"):
        LoadMaskUnion()([a, b])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"bad\.png: cannot read mask"):
        LoadMaskUnion()([bad])
    with pytest.raises(ValueError, match="empty list"):
        LoadMaskUnion()([])


@pytest.mark.parametrize("ext", [".png", ".tif", ".jpg"])
def test_save_like_input_2d_round_trip(tmp_path: Path, ext: str):
    src = tmp_path / f"cells{ext}"
    Image.fromarray(np.zeros((7, 11, 3), np.uint8)).save(src)
    image = LoadImage(reader="PILReader", image_only=True, ensure_channel_first=True)(str(src))
    pred = MetaTensor(torch.zeros(1, *image.shape[1:]), meta=dict(image.meta))
    pred[0, 2, 3] = 1  # x=2, y=3 in MONAI's (W, H) layout
    SaveLikeInputd(keys="pred", output_dir=tmp_path / "out")({"pred": pred})
    out_ext = ".png" if ext == ".jpg" else ext
    saved = np.asarray(Image.open(tmp_path / "out" / f"cells{out_ext}"))
    assert saved.shape == (7, 11) and saved.dtype == np.uint8
    assert saved[3, 2] == 255 and saved.sum() == 255


def test_save_like_input_nifti_keeps_affine(tmp_path: Path):
    affine = np.diag([0.5, 0.25, 1.0, 1.0])
    affine[:3, 3] = [10.0, -4.0, 2.0]
    src = tmp_path / "slice.nii.gz"
    nib.save(nib.Nifti1Image(np.random.rand(9, 13).astype(np.float32), affine), src)
    image = LoadImage(image_only=True, ensure_channel_first=True)(str(src))
    pred = MetaTensor(torch.zeros(1, 9, 13), meta=dict(image.meta))
    pred[0, 4, 5] = 1
    SaveLikeInput(tmp_path / "out")(pred)
    out = nib.load(tmp_path / "out" / "slice.nii.gz")
    np.testing.assert_allclose(out.affine, affine)
    data = np.asarray(out.dataobj).squeeze()
    assert data.shape == (9, 13) and data[4, 5] == 1 and data.sum() == 1


def test_save_like_input_rejects_unknown_source(tmp_path: Path):
    with pytest.raises(ValueError, match="output format"):
        SaveLikeInput(tmp_path)(MetaTensor(torch.zeros(1, 2, 2), meta={"filename_or_obj": "x.xyz"}))
