"""The class-index segmentation reader: pairing, checks with clear errors, split reuse and the synthetic default."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_png

from medkit.data.shapes import check_label_items, prepare_shapes_datalists, read_class_names, read_label_pairs


def _dataset(root: Path, n: int = 4, classes: dict | None = None) -> Path:
    for i in range(n):
        write_png(root / "images" / f"im{i}.png", np.full((6, 8, 3), 40 * i, np.uint8))
        label = np.zeros((6, 8), np.uint8)
        label[1:3, 2:5] = 1 + i % 2
        write_png(root / "labels" / f"im{i}.png", label)
    (root / "classes.json").write_text(json.dumps(classes or {"0": "background", "1": "a", "2": "b"}))
    return root


def test_reads_pairs_and_classes(tmp_path):
    root = _dataset(tmp_path)
    assert read_class_names(root) == ["background", "a", "b"]
    items = read_label_pairs(root)
    assert [it["id"] for it in items] == ["im0", "im1", "im2", "im3"]
    check_label_items(items, 3)


@pytest.mark.parametrize(
    "classes,match",
    [({"0": "bg", "2": "b"}, "0..C-1"), ({"0": "bg"}, "C >= 2"), (["bg", "a"], "object mapping")],
    ids=["gap", "one-class", "list"],
)
def test_bad_classes_json(tmp_path, classes, match):
    (tmp_path / "classes.json").write_text(json.dumps(classes))
    with pytest.raises(ValueError, match=match):
        read_class_names(tmp_path)


def test_missing_classes_json_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="classes.json is missing"):
        read_class_names(tmp_path)


def test_label_value_outside_the_classes_names_file_and_value(tmp_path):
    root = _dataset(tmp_path)
    bad = np.zeros((6, 8), np.uint8)
    bad[0, 0] = 7
    write_png(root / "labels" / "im2.png", bad)
    with pytest.raises(ValueError, match=r"im2.png: label values \[7\] are not in classes.json"):
        check_label_items(read_label_pairs(root), 3)


@pytest.mark.parametrize(
    "label,match",
    [(np.zeros((6, 8, 3), np.uint8), "single-channel"), (np.zeros((5, 8), np.uint8), "differs from image")],
    ids=["rgb-label", "size-mismatch"],
)
def test_bad_label_images(tmp_path, label, match):
    root = _dataset(tmp_path)
    write_png(root / "labels" / "im1.png", label)
    with pytest.raises(ValueError, match=f"im1.png: .*{match}"):
        check_label_items(read_label_pairs(root), 3)


def test_image_without_label(tmp_path):
    root = _dataset(tmp_path)
    (root / "labels" / "im3.png").unlink()
    with pytest.raises(ValueError, match="im3.png: image has no label"):
        read_label_pairs(root)


def test_prepare_generates_default_splits_and_reuses(tmp_path, caplog):
    default = tmp_path / "data" / "shapes_seg"
    out = tmp_path / "run"
    datalist = prepare_shapes_datalists(default, out, default_dataset_dir=default, num_synthetic=20, synthetic_size=32)
    assert datalist["synthetic"] and "SYNTHETIC" in caplog.text
    assert [len(datalist[k]) for k in ("train", "val", "test")] == [14, 2, 4]
    assert datalist["classes"][0] == "background" and len(datalist["classes"]) == 6
    again = prepare_shapes_datalists(default, out, default_dataset_dir=default)
    assert again["test"] == datalist["test"]


def test_prepare_rejects_missing_dir_and_class_count(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prepare_shapes_datalists(tmp_path / "nope", tmp_path / "out")
    root = _dataset(tmp_path / "d")
    with pytest.raises(ValueError, match="lists 3 classes but the network has 6 outputs"):
        prepare_shapes_datalists(root, tmp_path / "out", num_classes=6)
