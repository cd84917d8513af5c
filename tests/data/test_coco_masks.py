"""medkit.data.coco and ``medkit data coco-masks``: instance choice, masks equal to annToMask, the manifest, splits."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medkit.cli import main
from medkit.data.coco import load_coco, prepare_coco_masks_datalists, read_coco_manifest, write_coco_masks

pytest.importorskip("pycocotools")
from pycocotools import mask as mask_utils  # noqa: E402

CATEGORIES = [{"id": 1, "name": "dog"}, {"id": 2, "name": "cake"}, {"id": 3, "name": "person"}]


def _box(h: int, w: int, top: int, left: int, bottom: int, right: int) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[top:bottom, left:right] = 1
    return mask


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE by hand: run lengths of the column-major pixels, starting with a run of zeros."""
    flat = mask.flatten(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    return {"counts": ([0] if flat[0] else []) + runs, "size": list(mask.shape)}


def _polygon(top: int, left: int, bottom: int, right: int) -> list[list[float]]:
    return [[left, top, right, top, right, bottom, left, bottom]]


def _ann(ann_id: int, image_id: int, category_id: int, area: float, segmentation, iscrowd: int = 0) -> dict:
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "iscrowd": iscrowd, "area": area,
            "segmentation": segmentation}  # fmt: skip


def write_tiny_coco(root: Path) -> Path:
    """Three images: ``a`` (30x40) with a small and a large dog polygon plus a larger crowd dog (uncompressed RLE),
    ``b`` (32x32) with one cake as compressed RLE, ``c`` (24x36) with only a person."""
    crowd = _box(30, 40, 0, 0, 30, 40)
    cake = _box(32, 32, 8, 4, 20, 28)
    rle = mask_utils.encode(np.asfortranarray(cake))
    rle["counts"] = rle["counts"].decode("ascii")
    anns = [
        _ann(10, 1, 1, 16.0, _polygon(2, 2, 6, 6)),
        _ann(11, 1, 1, 200.0, _polygon(10, 12, 20, 32)),
        _ann(12, 1, 1, 1200.0, _uncompressed_rle(crowd), iscrowd=1),
        _ann(20, 2, 2, float(cake.sum()), rle),
        _ann(30, 3, 3, 50.0, _polygon(1, 1, 6, 11)),
    ]
    images = [
        {"id": 1, "file_name": "a.jpg", "height": 30, "width": 40},
        {"id": 2, "file_name": "b.jpg", "height": 32, "width": 32},
        {"id": 3, "file_name": "c.jpg", "height": 24, "width": 36},
    ]
    rng = np.random.default_rng(0)
    for info in images:
        pixels = rng.integers(0, 255, (info["height"], info["width"], 3), dtype=np.uint8)
        (root / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / "images" / info["file_name"])
    path = root / "instances_train2017.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": CATEGORIES}))
    return path


@pytest.fixture
def tiny_coco(tmp_path: Path) -> Path:
    return write_tiny_coco(tmp_path / "coco")


def _expected_mask(annotation_file: Path, ann_id: int, size: int) -> np.ndarray:
    """annToMask straight from pycocotools, resized by nearest neighbour to ``size``, as 0/255."""
    coco = load_coco(annotation_file)
    mask = coco.annToMask(coco.anns[ann_id]).astype(np.uint8) * 255
    return np.asarray(Image.fromarray(mask).resize((size, size), Image.Resampling.NEAREST))


def test_largest_non_crowd_instance_is_chosen_one_mask_per_image(tiny_coco, tmp_path):
    out = tmp_path / "out"
    summary = write_coco_masks(tiny_coco, tiny_coco.parent / "images", out, ["dog", "cake"], size=16)
    assert summary.per_category == {"dog": 1, "cake": 1}
    assert summary.skipped == {"no matching instance": 1}  # c.jpg holds only a person
    rows = {r["file_name"]: r for r in read_coco_manifest(out)}
    assert {name: rows[name]["annotation_id"] for name in rows} == {"a.png": "11", "b.png": "20"}
    assert rows["a.png"]["subset"] == "images" and rows["b.png"]["category"] == "cake"
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["a.png", "b.png"]
    assert sorted(p.name for p in (out / "images").iterdir()) == ["a.png", "b.png"]
    with Image.open(out / "images" / "a.png") as im:
        assert (im.mode, im.size) == ("RGB", (16, 16))
    for name, row in rows.items():
        written = np.asarray(Image.open(out / "masks" / name))
        np.testing.assert_array_equal(written, _expected_mask(tiny_coco, int(row["annotation_id"]), 16))
        assert set(np.unique(written)) == {0, 255}


def test_masks_at_the_original_size_are_the_drawn_instances(tiny_coco, tmp_path):
    write_coco_masks(tiny_coco, tiny_coco.parent / "images", tmp_path / "out", ["cake"], size=32)
    written = np.asarray(Image.open(tmp_path / "out" / "masks" / "b.png"))
    np.testing.assert_array_equal(written, _box(32, 32, 8, 4, 20, 28) * 255)  # the RLE drawn in write_tiny_coco


def test_min_area_and_unknown_categories(tiny_coco, tmp_path):
    summary = write_coco_masks(tiny_coco, tiny_coco.parent / "images", tmp_path / "o", ["dog"], size=8, min_area=500)
    assert summary.written == 0 and summary.skipped == {"no matching instance": 3}  # the crowd dog never counts
    with pytest.raises(ValueError, match=r"instances_train2017.json: no category 'dgo'; did you mean dog\?"):
        write_coco_masks(tiny_coco, tiny_coco.parent / "images", tmp_path / "o", ["dgo"])


def test_image_size_must_match_its_annotation(tiny_coco, tmp_path):
    Image.new("RGB", (10, 10)).save(tiny_coco.parent / "images" / "b.jpg")
    with pytest.raises(ValueError, match=r"b.jpg: image is 10x10 but the annotations say 32x32"):
        write_coco_masks(tiny_coco, tiny_coco.parent / "images", tmp_path / "o", ["cake"])


def test_subsets_share_a_folder_and_a_rerun_replaces_its_own_pairs(tiny_coco, tmp_path):
    out, images = tmp_path / "out", tiny_coco.parent / "images"
    write_coco_masks(tiny_coco, images, out, ["dog", "cake"], size=8, subset="train2017")
    with pytest.raises(ValueError, match="a.png already belongs to another subset"):
        write_coco_masks(tiny_coco, images, out, ["dog"], size=8, subset="val2017")
    write_coco_masks(tiny_coco, images, out, ["person"], size=8, subset="val2017")
    write_coco_masks(tiny_coco, images, out, ["cake"], size=8, subset="train2017")  # a.png is no longer chosen
    rows = read_coco_manifest(out)
    assert [(r["file_name"], r["subset"]) for r in rows] == [("b.png", "train2017"), ("c.png", "val2017")]
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["b.png", "c.png"]
    assert not list(out.rglob(".tmp-*"))


def _write_pairs(root: Path, subsets: list[str]) -> None:
    rows = []
    for i, subset in enumerate(subsets):
        Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(_mkdir(root / "images") / f"{i}.png")
        Image.fromarray(_box(8, 8, 0, 0, 4, 4 + i % 3) * 255).save(_mkdir(root / "masks") / f"{i}.png")
        rows.append({"file_name": f"{i}.png", "subset": subset, "category": "dog"})
    with (root / "manifest.csv").open("w", newline="") as f:
        fields = ["file_name", "subset", "image_id", "source", "category", "category_id", "annotation_id", "area"]
        writer = csv.DictWriter(f, fieldnames=fields, restval="0")
        writer.writeheader()
        writer.writerows(rows)


def test_datalists_train_on_one_subset_and_halve_the_other(tmp_path):
    _write_pairs(tmp_path / "pairs", ["train2017"] * 3 + ["val2017"] * 4)
    datalist = prepare_coco_masks_datalists(tmp_path / "pairs", tmp_path / "run")
    assert [i["id"] for i in datalist["train"]] == ["0", "1", "2"]
    assert sorted(i["id"] for i in datalist["val"] + datalist["test"]) == ["3", "4", "5", "6"]
    assert len(datalist["val"]) == 2 and datalist["classes"] == ["background", "foreground"]
    assert datalist["categories"] == ["dog"]


def test_datalists_with_one_subset_fall_back_to_the_default_split(tmp_path, caplog):
    _write_pairs(tmp_path / "pairs", ["val2017"] * 7)
    datalist = prepare_coco_masks_datalists(tmp_path / "pairs", tmp_path / "run")
    assert [len(datalist[part]) for part in ("train", "val", "test")] == [5, 1, 1]  # 70/10/20 of 7, rounded
    assert "0 train2017 pairs and 7 others (need 1+ and 2+)" in caplog.text


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_cli_prints_counts_and_the_dataset_dir(tiny_coco, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["data", "coco-masks", "--annotations", str(tiny_coco), "--images", str(tiny_coco.parent / "images")]
    assert main([*argv, "--categories", "dog, cake,person", "--out", str(out), "--size", "12"]) == 0
    printed = capsys.readouterr().out
    assert "images: 3 pairs in" in printed and "(dog 1, cake 1, person 1); images skipped: none" in printed
    assert f"--dataset_dir {out}" in printed and "coco_masks.json" in printed
    assert main([*argv, "--categories", "doggo", "--out", str(out)]) == 1
    assert "no category 'doggo'" in capsys.readouterr().err


def test_real_coco_tiny_one_mask_per_image_with_an_instance(real_data_dir, tmp_path, capsys):
    root = real_data_dir / "coco_tiny"
    if not root.is_dir():
        pytest.skip(f"{root} is missing")
    annotations, out, names = root / "annotations" / "instances_train2017.json", tmp_path / "out", ["cake", "dog"]
    argv = ["--annotations", str(annotations), "--images", str(root / "train2017"), "--out", str(out)]
    assert main(["data", "coco-masks", *argv, "--categories", "cake,dog,motorcycle"]) == 0
    coco = load_coco(annotations)
    cat_ids = coco.getCatIds(catNms=[*names, "motorcycle"])
    expected = {}  # image stem -> largest non-crowd annotation, straight from pycocotools
    for image_id in coco.getImgIds():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=cat_ids, iscrowd=False))
        if anns:
            expected[Path(coco.imgs[image_id]["file_name"]).stem] = max(anns, key=lambda a: a["area"])["id"]
    assert expected and sorted(p.stem for p in (out / "masks").iterdir()) == sorted(expected)
    for row in read_coco_manifest(out):
        stem = Path(row["file_name"]).stem
        assert int(row["annotation_id"]) == expected[stem]
        written = np.asarray(Image.open(out / "masks" / row["file_name"]))
        np.testing.assert_array_equal(written, _expected_mask(annotations, expected[stem], 256))
