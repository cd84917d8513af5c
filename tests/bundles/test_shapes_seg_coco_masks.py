"""bundles/shapes_seg/configs/coco_masks.json: one epoch on pairs that ``write_coco_masks`` made from a generated COCO
file, then the evaluate layer on top, in-process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, bundle_layers, run_bundle_in_process
from PIL import Image

from medkit.data.coco import write_coco_masks

pytest.importorskip("pycocotools")

CONFIGS = REPO_ROOT / "bundles" / "shapes_seg" / "configs"
TINY = ["--epochs", "1", "--batch_size", "2", "--channels", "[4,8]", "--num_workers", "0"]


def _coco_subset(root: Path, subset: str, first_id: int, count: int) -> tuple[Path, Path]:
    """``count`` 20x24 RGB images, each with one dog: a rectangle polygon whose place depends on the image."""
    images, anns, rng = [], [], np.random.default_rng(first_id)
    for k, image_id in enumerate(range(first_id, first_id + count)):
        name = f"{image_id:012d}.jpg"
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(_mkdir(root / subset) / name)
        images.append({"id": image_id, "file_name": name, "height": 20, "width": 24})
        top, left = 2 + k, 3 + k
        polygon = [left, top, left + 10, top, left + 10, top + 8, left, top + 8]
        anns.append({"id": 100 + image_id, "image_id": image_id, "category_id": 18, "iscrowd": 0, "area": 80.0,
                     "segmentation": [polygon]})  # fmt: skip
    path = _mkdir(root / "annotations") / f"instances_{subset}.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 18, "name": "dog"}]}))
    return path, root / subset


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_coco_masks_layer_trains_on_train2017_and_evaluates(tmp_path):
    pairs = tmp_path / "pairs"
    for subset, first_id, count in (("train2017", 1, 4), ("val2017", 11, 4)):
        write_coco_masks(*_coco_subset(tmp_path / "coco", subset, first_id, count), pairs, ["dog"], size=16)
    out = tmp_path / "run"
    args = ["--dataset_dir", str(pairs), "--output_dir", str(out), *TINY]
    run_bundle_in_process("run", "--config_file", bundle_layers(CONFIGS, "train.json", "coco_masks.json"), *args)
    datalist = json.loads((out / "datalist.json").read_text())
    assert [i["id"] for i in datalist["train"]] == [f"{i:012d}" for i in range(1, 5)]
    assert sorted(i["id"] for i in datalist["val"] + datalist["test"]) == [f"{i:012d}" for i in range(11, 15)]
    assert (out / "model.pt").is_file() and json.loads((out / "run_settings.json").read_text())["num_classes"] == 2
    evaluate = bundle_layers(CONFIGS, "train.json", "coco_masks.json", "evaluate.json")
    run_bundle_in_process("run", "--config_file", evaluate, *args)
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert metrics["num_images"] == 2 and set(metrics["per_class"]["val_dice"]) == {"background", "foreground"}
    assert 0.0 <= metrics["metrics"]["val_mean_dice"] <= 1.0
