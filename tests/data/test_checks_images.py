"""``medkit.data.checks.images.read_label_values``: palette colours (not indices), no alpha, errors naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medkit.data.checks.images import read_label_values


def test_palette_mask_gives_colours_not_indices(tmp_path):
    indices = np.array([[0, 1], [2, 0]], dtype=np.uint8)
    im = Image.fromarray(indices, mode="P")
    im.putpalette([0, 0, 0, 200, 10, 0, 0, 0, 90] + [0] * (256 * 3 - 9))
    im.save(tmp_path / "mask.png")
    values, mode = read_label_values(tmp_path / "mask.png", "mask")
    assert mode == "P"
    assert values.tolist() == [[[0, 0, 0], [200, 10, 0]], [[0, 0, 90], [0, 0, 0]]]


def test_alpha_is_dropped(tmp_path):
    rgba = np.zeros((3, 5, 4), dtype=np.uint8)
    rgba[..., 3] = 255  # opaque everywhere: alpha would read as foreground
    rgba[1, 2, 0] = 7
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "mask.png")
    values, mode = read_label_values(tmp_path / "mask.png", "mask")
    assert mode == "RGBA" and values.shape == (3, 5, 3)
    assert np.argwhere(values).tolist() == [[1, 2, 0]]


def test_unreadable_file_is_named(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        read_label_values(path, "label image")
