from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_png
from monai.transforms import LoadImage

from medkit.data import (
    check_nuclei_items,
    list_images,
    load_datalist,
    prepare_nuclei_datalists,
    read_dsb_stage1,
    read_image_mask_pairs,
    read_nuclei_dataset,
)
from medkit.transforms import LoadMaskUnion


def test_dsb_reader_lists_cases_and_masks(tiny_dsb: Path):
    items = read_dsb_stage1(tiny_dsb)
    assert [i["id"] for i in items] == ["a", "b"]
    assert len(items[0]["label"]) == 2 and len(items[1]["label"]) == 1
    assert items[0]["image"].endswith("a/images/a.png")
    # the parent of stage1_train works too
    assert read_dsb_stage1(tiny_dsb.parent) == items
    assert read_nuclei_dataset(tiny_dsb.parent) == (items, "dsb2018")


def test_mask_union_matches_image_layout(tiny_dsb: Path):
    item = read_dsb_stage1(tiny_dsb)[0]
    mask = LoadMaskUnion()(item["label"])
    image = LoadImage(image_only=True, ensure_channel_first=True)(item["image"])
    assert mask.shape == (1, 20, 12)  # MONAI's PIL layout: (C, W, H)
    assert image.shape[1:] == mask.shape[1:]
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert mask.sum() == 3 * 4 + 3 * 4
    # the union is where the image is bright, in MONAI's (W, H) layout
    torch.testing.assert_close((image[0] > 0).float(), mask[0])


def test_flat_pair_reader(tmp_path: Path):
    write_png(tmp_path / "images" / "x1.png", np.full((8, 8), 50, np.uint8))
    write_png(tmp_path / "masks" / "x1.tif", np.eye(8, dtype=np.uint8) * 255)
    items, layout = read_nuclei_dataset(tmp_path)
    assert layout == "pairs" and items[0]["id"] == "x1" and items[0]["label"].endswith("x1.tif")
    assert LoadMaskUnion()(items[0]["label"]).sum() == 8


def test_pair_reader_names_image_without_mask(tmp_path: Path):
    write_png(tmp_path / "images" / "lonely.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "masks").mkdir()
    with pytest.raises(ValueError, match=r"lonely.png: image has no mask"):
        read_image_mask_pairs(tmp_path)


def test_image_with_no_masks_is_named(tiny_dsb: Path):
    for m in (tiny_dsb / "b" / "masks").iterdir():
        m.unlink()
    with pytest.raises(ValueError, match=r"b\.png: image has no masks"):
        read_dsb_stage1(tiny_dsb)


def test_mask_size_mismatch_is_named(tiny_dsb: Path):
    write_png(tiny_dsb / "b" / "masks" / "wrong.png", np.zeros((5, 7), np.uint8))
    with pytest.raises(ValueError, match=r"wrong\.png: mask size 7x5 differs from image .*b\.png size 16x16"):
        check_nuclei_items(read_dsb_stage1(tiny_dsb))


@pytest.mark.parametrize("cut", [30, 60], ids=["header", "data"])
def test_corrupt_png_is_named(tiny_dsb: Path, cut: int):
    path = tiny_dsb / "a" / "images" / "a.png"
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(ValueError, match=r"a\.png: cannot read image"):
        check_nuclei_items(read_dsb_stage1(tiny_dsb))


def test_missing_dataset_dir_that_is_not_the_default(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"dataset_dir .*nowhere does not exist"):
        prepare_nuclei_datalists(tmp_path / "nowhere", tmp_path / "out", default_dataset_dir=tmp_path / "default")


def test_default_dataset_dir_is_generated_and_split_reused(tmp_path: Path, caplog):
    default = tmp_path / "synthetic"
    with caplog.at_level("WARNING"):
        dl = prepare_nuclei_datalists(
            default, tmp_path / "out", seed=1, default_dataset_dir=default, num_synthetic=10, synthetic_size=64
        )
    assert "SYNTHETIC" in caplog.text and dl["synthetic"] is True
    assert [len(dl[k]) for k in ("train", "val", "test")] == [7, 1, 2]
    assert load_datalist(tmp_path / "out" / "datalist.json", "test") == dl["test"]
    # a second call (resume, evaluate) reuses the saved split
    assert prepare_nuclei_datalists(default, tmp_path / "out", seed=1, default_dataset_dir=default) == dl
    # a different seed makes a new split
    assert prepare_nuclei_datalists(default, tmp_path / "out", seed=2, default_dataset_dir=default)["seed"] == 2


def test_list_images_skips_mask_folders(tiny_dsb: Path):
    found = list_images(tiny_dsb)
    assert [Path(f["image"]).name for f in found] == ["a.png", "b.png"]
    empty = tiny_dsb.parent / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="holds no"):
        list_images(empty)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_images(tiny_dsb / "nope")


def test_real_dsb2018_samples(real_data_dir: Path):
    root = real_data_dir / "dsb2018_nuclei"
    items = read_dsb_stage1(root)[:8]
    assert len(items) == 8
    check_nuclei_items(items)
    loader = LoadImage(image_only=True, ensure_channel_first=True)
    for item in items:
        mask = LoadMaskUnion()(item["label"])
        image = loader(item["image"])
        assert image.shape[0] in (3, 4) and image.shape[1:] == mask.shape[1:]
        fraction = float(mask.mean())
        assert 0.0 < fraction < 0.9, f"{item['id']}: implausible nucleus fraction {fraction}"
