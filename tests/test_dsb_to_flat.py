"""scripts/dsb_to_flat.py: the flat copy holds the same images and their union masks."""

from __future__ import annotations

import importlib.util

import numpy as np
import torch
from conftest import REPO_ROOT

from medkit.data.nuclei import read_dsb_stage1, read_image_mask_pairs
from medkit.transforms import LoadMaskUnion


def _script():
    spec = importlib.util.spec_from_file_location("dsb_to_flat", REPO_ROOT / "scripts" / "dsb_to_flat.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flat_copy_has_the_union_masks_the_bundle_builds(tiny_dsb, tmp_path):
    assert _script().main([str(tiny_dsb.parent), str(tmp_path / "flat")]) == 0
    flat = {item["image"].split("/")[-1][:-4]: item for item in read_image_mask_pairs(tmp_path / "flat")}
    assert sorted(flat) == ["a", "b"]
    for case in read_dsb_stage1(tiny_dsb):
        expected = LoadMaskUnion()(case["label"])
        got = LoadMaskUnion()(flat[case["id"]]["label"])
        torch.testing.assert_close(torch.as_tensor(got), torch.as_tensor(expected))
        assert float(expected.sum()) > 0
    # case a has two nuclei in separate mask files: both are in its one flat mask
    assert int(np.count_nonzero(np.asarray(LoadMaskUnion()(flat["a"]["label"])))) == 3 * 4 * 2
