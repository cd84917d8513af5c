"""Synthetic H&E patches: determinism, names and labels, and a measurable difference between the classes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medkit.data import generate_pcam_dataset, read_pcam_folder
from medkit.data.synthetic_pcam import synthesize_pcam_patch


def _haematoxylin_fraction(patch: np.ndarray) -> float:
    """Share of dark purple pixels: red and green well below the pink stroma's, blue stays high."""
    r, g, b = (patch[..., c].astype(float) for c in range(3))
    return float(np.mean((r < 170) & (g < 140) & (b > r - 20)))


def test_patch_shape_dtype_and_determinism():
    a = synthesize_pcam_patch(np.random.default_rng(5), tumour=True)
    b = synthesize_pcam_patch(np.random.default_rng(5), tumour=True)
    c = synthesize_pcam_patch(np.random.default_rng(6), tumour=True)
    assert a.shape == (96, 96, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert synthesize_pcam_patch(np.random.default_rng(0), tumour=False, size=40).shape == (40, 40, 3)


def test_pink_stroma_and_purple_nuclei():
    patch = synthesize_pcam_patch(np.random.default_rng(0), tumour=False).astype(float)
    mean = patch.reshape(-1, 3).mean(0)
    assert mean[0] > mean[1] and mean[2] > mean[1]  # eosin pink/magenta: green absorbed most
    assert 0.0 < _haematoxylin_fraction(patch.astype(np.uint8)) < 0.2


def test_tumour_patches_hold_more_nuclear_stain():
    rng = np.random.default_rng(0)
    tumour = [_haematoxylin_fraction(synthesize_pcam_patch(rng, True)) for _ in range(30)]
    normal = [_haematoxylin_fraction(synthesize_pcam_patch(rng, False)) for _ in range(30)]
    assert np.mean(tumour) > 3 * np.mean(normal)
    # overlapping ranges would make a threshold useless: most pairs are ordered, though not all need be
    assert np.mean([t > n for t in tumour for n in normal]) > 0.9


def test_dataset_files_labels_and_determinism(tmp_path):
    a = generate_pcam_dataset(tmp_path / "a", num_patches=6, seed=1)
    b = generate_pcam_dataset(tmp_path / "b", num_patches=6, seed=1)
    items = read_pcam_folder(a)
    assert sorted(i["id"] for i in items) == ["N_3.jpg", "N_4.jpg", "N_5.jpg", "T_0.jpg", "T_1.jpg", "T_2.jpg"]
    for i in items:
        np.testing.assert_array_equal(np.asarray(Image.open(i["image"])), np.asarray(Image.open(b / i["id"])))
    assert (a / "SYNTHETIC.md").is_file()
    assert Image.open(a / "T_0.jpg").size == (96, 96)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"num_patches": 1}, "num_patches"), ({"tumour_fraction": 1.0}, "tumour_fraction"), ({"size": 8}, "size")],
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_pcam_dataset(tmp_path, **{"num_patches": 4, **kwargs})
