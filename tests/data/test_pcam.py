"""The T_/N_ patch folder reader, inference listing and the stratified, reusable split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_png

from medkit.data import list_patches, prepare_pcam_datalists, read_pcam_folder

PATCH = np.full((8, 8, 3), 200, np.uint8)


def _folder(root: Path, names: list[str]) -> Path:
    for name in names:
        write_png(root / name, PATCH)  # PIL picks the format from the extension
    return root


def test_reads_labels_from_the_first_letter(tmp_path):
    root = _folder(tmp_path / "p", ["T_0.jpg", "N_1.jpg", "T_x2.png", "N_3.tif"])
    (root / "notes.txt").write_text("not an image, ignored")
    items = read_pcam_folder(root)
    assert [(i["id"], i["label"]) for i in items] == [("N_1.jpg", 0), ("N_3.tif", 0), ("T_0.jpg", 1), ("T_x2.png", 1)]
    assert all(Path(i["image"]).is_absolute() and Path(i["image"]).is_file() for i in items)


@pytest.mark.parametrize("bad", ["X_1.jpg", "t_1.jpg", "T1.jpg", "tumour_1.jpg", "N_.jpg"])
def test_other_names_are_an_error_naming_the_file(tmp_path, bad):
    root = _folder(tmp_path / "p", ["T_0.jpg", "N_1.jpg", bad])
    with pytest.raises(ValueError, match=bad.replace(".", r"\.")):
        read_pcam_folder(root)


def test_missing_empty_and_one_class_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_pcam_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no"):
        read_pcam_folder(tmp_path / "empty")
    root = _folder(tmp_path / "one", ["T_0.jpg", "T_1.jpg"])
    with pytest.raises(ValueError, match="0 normal"):
        read_pcam_folder(root)


def test_list_patches_takes_any_name(tmp_path):
    root = _folder(tmp_path / "slide7", ["b.png", "a.jpg", "c.tiff"])
    items = list_patches(root)
    assert [i["id"] for i in items] == ["a.jpg", "b.png", "c.tiff"]
    assert {i["source"] for i in items} == {"slide7"}


def test_split_is_stratified_saved_and_reused(tmp_path):
    names = [f"T_{i}.jpg" for i in range(10)] + [f"N_{i}.jpg" for i in range(20)]
    root = _folder(tmp_path / "p", names)
    out = tmp_path / "run"
    split = prepare_pcam_datalists(root, out, seed=3)
    sizes = {k: [sum(i["label"] == c for i in split[k]) for c in (0, 1)] for k in ("train", "val", "test")}
    assert sizes == {"train": [14, 7], "val": [2, 1], "test": [4, 2]}  # 70/10/20 of each class
    ids = [i["id"] for k in ("train", "val", "test") for i in split[k]]
    assert sorted(ids) == sorted(names)
    assert split["synthetic"] is False
    saved = json.loads((out / "datalist.json").read_text())
    assert saved["test"] == split["test"]
    (root / "T_0.jpg").unlink()  # a reused split does not re-read the folder
    assert prepare_pcam_datalists(root, out, seed=3)["test"] == split["test"]
    assert prepare_pcam_datalists(root, tmp_path / "other", seed=4)["test"] != split["test"]


def test_missing_default_folder_is_generated_and_marked_synthetic(tmp_path, caplog):
    default = tmp_path / "data" / "pcam_synthetic"
    split = prepare_pcam_datalists(default, tmp_path / "run", default_dataset_dir=default, num_synthetic=20)
    assert split["synthetic"] is True and len(list(default.glob("*.jpg"))) == 20
    assert "SYNTHETIC" in caplog.text
    with pytest.raises(FileNotFoundError, match="T_<n>.jpg"):
        prepare_pcam_datalists(tmp_path / "typo", tmp_path / "run2", default_dataset_dir=default)
