from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medkit.data.retina import check_retina_items, estimate_fov, prepare_retina_datalists, read_retina_split


def _gif(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8), mode="L").save(path)


def _drive(root: Path, train=(21, 22, 23, 24, 25), test=(1, 2), size=(20, 24)) -> Path:
    for split, word, numbers in (("training", "training", train), ("test", "test", test)):
        for n in numbers:
            (root / split / "images").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((*size, 3), 100, np.uint8)).save(root / split / "images" / f"{n:02d}_{word}.tif")
            _gif(root / split / "1st_manual" / f"{n:02d}_manual1.gif", np.eye(*size) * 255)
            _gif(root / split / "mask" / f"{n:02d}_{word}_mask.gif", np.full(size, 255))
    return root


def test_reads_drive_split(tmp_path):
    items = read_retina_split(_drive(tmp_path) / "test")
    assert [i["id"] for i in items] == ["01", "02"]
    assert Path(items[0]["label"]).name == "01_manual1.gif" and Path(items[0]["fov"]).name == "01_test_mask.gif"
    assert all(Path(i[k]).is_absolute() for i in items for k in ("image", "label", "fov"))


def test_missing_label_names_the_image(tmp_path):
    root = _drive(tmp_path)
    (root / "training" / "1st_manual" / "23_manual1.gif").unlink()
    with pytest.raises(ValueError, match=r"23_training\.tif: image has no label files matching .*23_manual1\.gif"):
        read_retina_split(root / "training")


def test_missing_fov_names_the_image(tmp_path):
    root = _drive(tmp_path)
    (root / "test" / "mask" / "02_test_mask.gif").unlink()
    with pytest.raises(ValueError, match=r"02_test\.tif: image has no FOV mask files"):
        read_retina_split(root / "test")


def test_size_mismatch_names_both_files(tmp_path):
    root = _drive(tmp_path)
    _gif(root / "test" / "mask" / "01_test_mask.gif", np.full((20, 23), 255))
    items = read_retina_split(root / "test")
    with pytest.raises(
        ValueError, match=r"01_test_mask\.gif: fov size 23x20 differs from image .*01_test\.tif size 24x20"
    ):
        check_retina_items(items)


def test_glob_layout_without_fov_estimates_one(tmp_path):
    # CHASE_DB1 style: Image_01L.jpg + Image_01L_1stHO.png in one folder, no FOV masks
    image = np.zeros((64, 64, 3), np.uint8)
    yy, xx = np.mgrid[:64, :64]
    disc = (yy - 32) ** 2 + (xx - 32) ** 2 < 28**2
    image[disc] = (180, 90, 30)
    for name in ("Image_01L", "Image_01R", "Image_02L", "Image_02R"):
        Image.fromarray(image).save(tmp_path / f"{name}.jpg", quality=95)
        Image.fromarray((disc & (yy == 32)).astype(np.uint8) * 255).save(tmp_path / f"{name}_1stHO.png")
    datalist = prepare_retina_datalists(tmp_path, tmp_path / "out", layout="chase_db1", val_fraction=0.25,
                                        test_fraction=0.25)  # fmt: skip
    assert [len(datalist[k]) for k in ("train", "val", "test")] == [2, 1, 1]
    fov = np.asarray(Image.open(datalist["test"][0]["fov"])) > 0
    assert (fov == disc).mean() > 0.97  # JPEG ringing may move the rim by a pixel
    assert estimate_fov(tmp_path / "Image_01L.jpg", tmp_path / "f.png").is_file()


def test_prepare_keeps_drive_test_split_and_reuses_saved_split(tmp_path):
    root = _drive(tmp_path / "drive")
    first = prepare_retina_datalists(root, tmp_path / "out", seed=1)
    assert [len(first[k]) for k in ("train", "val", "test")] == [4, 1, 2]
    assert [i["id"] for i in first["test"]] == ["01", "02"]
    assert not first["synthetic"]
    saved = json.loads((tmp_path / "out" / "datalist.json").read_text())
    assert saved["val"] == first["val"]
    (root / "training" / "images" / "25_training.tif").unlink()  # a reused split does not re-read the folder
    assert prepare_retina_datalists(root, tmp_path / "out", seed=1)["val"] == first["val"]
    other = prepare_retina_datalists(root, tmp_path / "out", seed=2)
    assert len(other["train"]) + len(other["val"]) == 4


def test_missing_dataset_dir_says_where_to_get_drive(tmp_path):
    with pytest.raises(FileNotFoundError, match="drive.grand-challenge.org"):
        prepare_retina_datalists(tmp_path / "missing", tmp_path / "out")


def test_default_dataset_is_generated_and_marked_synthetic(tmp_path, caplog):
    default = tmp_path / "retina_synthetic"
    datalist = prepare_retina_datalists(default, tmp_path / "out", default_dataset_dir=default,
                                        synthetic={"num_train": 5, "num_test": 2, "image_size": 48})  # fmt: skip
    assert datalist["synthetic"] and [len(datalist[k]) for k in ("train", "val", "test")] == [4, 1, 2]
    assert "SYNTHETIC" in caplog.text


def test_unknown_layout(tmp_path):
    with pytest.raises(ValueError, match="unknown retina layout 'drvie'"):
        read_retina_split(tmp_path, "drvie")
