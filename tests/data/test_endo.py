"""Endoscopy readers: course layout, mapping.json, up-front grey-value checks, EndoVis 2017, colorization frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_png

from medkit.data.class_mapping import read_mapping
from medkit.data.endo import (
    check_label_values,
    list_frames,
    prepare_colorization_datalists,
    prepare_endo_datalists,
    read_colorization_split,
    read_segmentation_split,
)
from medkit.data.endovis import endovis2017_mapping, read_endovis2017

MAPPING = {"0": {"index": 0, "name": "background"}, "100": {"index": 1, "name": "shaft"}}


def _frame(h: int = 6, w: int = 8) -> np.ndarray:
    return np.full((h, w, 3), 120, np.uint8)


def _label(value: int = 100, h: int = 6, w: int = 8) -> np.ndarray:
    lab = np.zeros((h, w), np.uint8)
    lab[1:3, 2:5] = value
    return lab


def _course(root: Path, flat: bool = False, bad: tuple[str, int] | None = None) -> Path:
    """segmentation/{train,validation,test} with two frames each and a mapping; ``bad`` puts a grey value in a label."""
    seg = root / "segmentation"
    seg.mkdir(parents=True)
    (seg / "mapping.json").write_text(json.dumps(MAPPING))
    for split in ("train", "validation", "test"):
        for k in range(2):
            value = bad[1] if bad and (split, k) == (bad[0], 1) else 100
            if flat:
                write_png(seg / split / f"f{k}.png", _frame())
                write_png(seg / split / f"f{k}_label.png", _label(value))
            else:
                write_png(seg / split / "images" / f"f{k}.png", _frame())
                write_png(seg / split / "labels" / f"f{k}.png", _label(value))
    return root


@pytest.mark.parametrize(
    "raw, names, grey_to_index",
    [
        (MAPPING, ("background", "shaft"), {0: 0, 100: 1}),
        ({"0": 0, "50": 1, "60": 1}, ("class_0", "class_1"), {0: 0, 50: 1, 60: 1}),
    ],
    ids=["objects", "bare_indices"],
)
def test_read_mapping(tmp_path, raw, names, grey_to_index):
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(raw))
    mapping = read_mapping(path)
    assert mapping.names == names and mapping.grey_to_index == grey_to_index
    lut = mapping.lut()
    assert lut.shape == (256,) and {g: int(lut[g]) for g in grey_to_index} == grey_to_index
    assert (np.delete(lut, list(grey_to_index)) == -1).all()  # every other grey value is unknown
    assert mapping.index_to_grey()[1] == min(g for g, i in grey_to_index.items() if i == 1)


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"0": 0, "300": 1}, "grey value 300 is outside 0-255"),
        ({"0": 0, "x": 1}, "key 'x' is not a grey value"),
        ({"0": 0, "9": 2}, "must run from 0 without gaps"),
        ({"0": {"index": 0, "name": "a"}, "9": {"index": 0, "name": "b"}}, "class 0 is named both 'a' and 'b'"),
        ({"0": -1}, "expected a class index >= 0"),
    ],
    ids=["range", "key", "gap", "names", "negative"],
)
def test_read_mapping_errors_name_the_file(tmp_path, raw, message):
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=message) as err:
        read_mapping(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("flat", [False, True], ids=["subfolders", "flat"])
def test_read_segmentation_split_layouts(tmp_path, flat):
    _course(tmp_path, flat=flat)
    items = read_segmentation_split(tmp_path / "segmentation" / "train")
    assert [i["id"] for i in items] == ["f0", "f1"]
    assert items[0]["label"].endswith("labels/f0.png" if not flat else "f0_label.png")


def test_frame_without_label_is_named(tmp_path):
    _course(tmp_path)
    write_png(tmp_path / "segmentation" / "train" / "images" / "lonely.png", _frame())
    with pytest.raises(ValueError, match="lonely.png: frame has no label image"):
        read_segmentation_split(tmp_path / "segmentation" / "train")


def test_unknown_grey_value_names_file_and_value(tmp_path):
    _course(tmp_path, bad=("validation", 37))
    with pytest.raises(ValueError) as err:
        prepare_endo_datalists(tmp_path, tmp_path / "run")
    message = str(err.value)
    assert "validation/labels/f1.png: grey value 37 is not in" in message and "mapping.json" in message
    assert not (tmp_path / "run" / "datalist.json").exists()


def test_label_size_mismatch_is_named(tmp_path):
    _course(tmp_path)
    write_png(tmp_path / "segmentation" / "test" / "labels" / "f0.png", _label(h=5))
    items = read_segmentation_split(tmp_path / "segmentation" / "test")
    with pytest.raises(ValueError, match="f0.png: label size"):
        check_label_values(items, read_mapping(tmp_path / "segmentation" / "mapping.json"))


def test_prepare_writes_split_and_mapping_and_reuses_them(tmp_path):
    _course(tmp_path)
    out = tmp_path / "run"
    first = prepare_endo_datalists(tmp_path, out)
    assert first["layout"] == "course" and [len(first[k]) for k in ("train", "val", "test")] == [2, 2, 2]
    assert json.loads((out / "mapping.json").read_text())["100"] == {"index": 1, "name": "shaft"}
    assert prepare_endo_datalists(tmp_path, out) == first


def test_missing_dataset_dir_fails_unless_default(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prepare_endo_datalists(tmp_path / "nope", tmp_path / "run")


def test_default_dataset_is_generated_and_logged_synthetic(tmp_path, caplog):
    root = tmp_path / "default"
    kwargs = dict(
        num_train=2, num_validation=1, num_test=1, num_colorization=2, num_colorization_validation=1, image_size=32
    )
    datalist = prepare_endo_datalists(root, tmp_path / "run", default_dataset_dir=root, synthetic_kwargs=kwargs)
    assert datalist["synthetic"] and len(datalist["train"]) == 2
    assert "SYNTHETIC" in caplog.text
    cor = prepare_colorization_datalists(root, tmp_path / "pre")
    assert [len(cor["train"]), len(cor["val"])] == [2, 1]


def test_colorization_reads_grey_when_present(tmp_path):
    write_png(tmp_path / "colorization" / "train_cor" / "a.png", _frame())
    write_png(tmp_path / "colorization" / "train_cor" / "b.png", _frame())
    write_png(tmp_path / "colorization" / "train_grey" / "a.png", _label())
    items = read_colorization_split(tmp_path / "colorization" / "train_cor")
    assert items[0]["grey"].endswith("train_grey/a.png") and "grey" not in items[1]


def _endovis(root: Path, prepared: bool) -> Path:
    for n in (1, 2, 3):
        seq = root / f"instrument_dataset_{n}"
        for k in range(2):
            write_png(seq / "left_frames" / f"frame00{k}.png", _frame())
            if prepared:
                write_png(seq / "instruments_masks" / f"frame00{k}.png", _label(64))  # 2 x 32: prograsp forceps
            else:
                write_png(seq / "ground_truth" / "Maryland_Bipolar_Forceps_labels" / f"frame00{k}.png", _label(10))
                write_png(seq / "ground_truth" / "Right_Prograsp_Forceps_labels" / f"frame00{k}.png", _label(30, w=8))
    return root


@pytest.mark.parametrize("prepared", [False, True], ids=["ground_truth", "instruments_masks"])
def test_endovis2017_layout(tmp_path, prepared):
    root = _endovis(tmp_path / "endovis", prepared)
    sequences = read_endovis2017(root)
    assert sorted(sequences) == [f"instrument_dataset_{n}" for n in (1, 2, 3)]
    label = sequences["instrument_dataset_1"][0]["label"]
    if prepared:
        assert label.endswith("instruments_masks/frame000.png")
    else:
        assert [e["index"] for e in label] == [1, 2]  # bipolar forceps, prograsp forceps
    datalist = prepare_endo_datalists(root, tmp_path / "run", seed=0)
    assert datalist["layout"] == "endovis2017" and datalist["mapping"]["64"]["name"] == "prograsp_forceps"
    seqs = {k: {i["id"].split("/")[0] for i in datalist[k]} for k in ("train", "val", "test")}
    assert all(len(s) == 1 for s in seqs.values()) and len(set.union(*seqs.values())) == 3  # whole sequences
    assert endovis2017_mapping().num_classes == 8


def test_list_frames_skips_labels(tmp_path):
    _course(tmp_path)
    _course(tmp_path / "flat", flat=True)
    frames = list_frames(tmp_path)
    names = [str(Path(f["image"]).relative_to(tmp_path)) for f in frames]
    assert len(names) == 12 and not any("label" in n for n in names)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no"):
        list_frames(tmp_path / "empty")
