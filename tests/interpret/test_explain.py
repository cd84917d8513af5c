"""``medkit explain`` end to end on a tiny bundle written into tmp_path (no dependency on shipped bundles)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from medkit.cli import main
from medkit.interpret.explain import histology_label, list_image_files, parse_overrides
from medkit.networks import MobileNetV1, VGGTransfer

SPATIAL = 48


def _bundle(root: Path, network_def: dict) -> Path:
    configs = root / "configs"
    configs.mkdir(parents=True)
    inference = {
        "imports": ["$import torch"],
        "spatial_size": [64, 64],
        "network_def": network_def,
        "_desc_": "building the dataset would fail: explain must build network_def and preprocessing only",
        "dataset": {"_target_": "Dataset", "data": "$1/0"},
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "LoadImaged", "keys": "image", "image_only": True, "ensure_channel_first": True},
                {"_target_": "Resized", "keys": "image", "spatial_size": "@spatial_size"},
                {"_target_": "ScaleIntensityd", "keys": "image"},
            ],
        },
        "run": ["$@dataset"],
    }
    (configs / "inference.json").write_text(json.dumps(inference))
    return root


def _images(folder: Path, names: list[str], size=(40, 56)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / name)
    return folder


@pytest.fixture(scope="module")
def vgg_bundle(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("explain")
    bundle = _bundle(
        root / "tiny_vgg",
        {"_target_": "medkit.networks.VGGTransfer", "out_channels": 1, "weights": None, "hidden_channels": 16},
    )
    ckpt = root / "model_final.pt"
    net = VGGTransfer(out_channels=1, weights=None, hidden_channels=16)
    torch.save({"model": net.state_dict(), "optimizer": {}}, ckpt)  # CheckpointSaver's final-checkpoint layout
    images = _images(root / "patches", ["N_0.jpg", "N_1.jpg", "N_2.jpg", "T_0.jpg", "T_1.jpg", "T_2.jpg"])
    return {"root": root, "bundle": bundle, "ckpt": ckpt, "images": images}


@pytest.fixture(scope="module")
def mobile_bundle(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("explain_mobile")
    bundle = _bundle(root / "tiny_mobile", {"_target_": "medkit.networks.MobileNetV1", "out_channels": 3})
    torch.save(MobileNetV1(out_channels=3).state_dict(), root / "model.pt")  # a bare state dict
    images = _images(root / "imgs", [f"img_{i}.png" for i in range(5)], size=(33, 33))
    return {"root": root, "bundle": bundle, "ckpt": root / "model.pt", "images": images}


def test_cli_writes_three_grids_with_two_images_per_class(vgg_bundle, capsys):
    out = vgg_bundle["root"] / "figures"
    rc = main(
        ["explain", "--bundle", str(vgg_bundle["bundle"]), "--checkpoint", str(vgg_bundle["ckpt"]),
         "--images", str(vgg_bundle["images"]), "--output-dir", str(out),
         "--override", f"spatial_size=[{SPATIAL}, {SPATIAL}]"]
    )  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / n) for n in ("saliency.png", "gradcam.png", "feature_maps.png")]
    sizes = {Path(p).name: Image.open(p).size for p in printed}
    # four rows (N_0, N_1, T_0, T_1): the grids are taller than wide for the 2-column ones
    assert sizes["saliency.png"][1] > 2 * sizes["saliency.png"][0] * 0.8
    # 3 RGB channels + 3 layers x 4 channels = 15 columns
    assert sizes["feature_maps.png"][0] > 2.5 * sizes["feature_maps.png"][1]


def test_methods_subset_and_checkpoint_layouts(vgg_bundle, capsys):
    rc = main(
        ["explain", "--bundle", str(vgg_bundle["bundle"]), "--checkpoint", str(vgg_bundle["ckpt"]), "--per-class", "1",
         "--images", str(vgg_bundle["images"] / "T_2.jpg"), str(vgg_bundle["images"] / "N_2.jpg"),
         "--methods", "gradcam", "--override", f"spatial_size=[{SPATIAL}, {SPATIAL}]"]
    )  # fmt: skip
    assert rc == 0
    assert capsys.readouterr().out.split() == [str(vgg_bundle["root"] / "explain" / "gradcam.png")]


def test_predicted_classes_when_names_carry_no_label(mobile_bundle, tmp_path, capsys):
    images = mobile_bundle["images"]
    labels = tmp_path / "datalist.json"
    labels.write_text(json.dumps({"test": [{"image": str(images / "img_0.png"), "label": [2]}]}))
    args = ["explain", "--bundle", str(mobile_bundle["bundle"]), "--checkpoint", str(mobile_bundle["ckpt"]),
            "--images", str(images), "--layers", "1,2,27", "--output-dir", str(tmp_path / "a")]  # fmt: skip
    assert main(args) == 0
    assert len(capsys.readouterr().out.split()) == 3
    assert main([*args, "--labels", str(labels), "--methods", "saliency"]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "a" / "saliency.png")]


@pytest.mark.parametrize(
    "change,message",
    [
        ({"--checkpoint": "missing.pt"}, "missing.pt"),
        ({"--methods": "saliency,lime"}, "'lime'"),
        ({"--images": "nowhere"}, "nowhere"),
        ({"--bundle": "no_such_bundle"}, "no_such_bundle"),
        ({"--checkpoint": "wrong.pt"}, "wrong.pt"),
    ],
    ids=["checkpoint", "method", "images", "bundle", "mismatch"],
)
def test_errors_name_the_bad_value(mobile_bundle, tmp_path, capsys, monkeypatch, change, message):
    monkeypatch.chdir(tmp_path)
    torch.save(MobileNetV1(out_channels=2).state_dict(), tmp_path / "wrong.pt")
    args = {"--bundle": str(mobile_bundle["bundle"]), "--checkpoint": str(mobile_bundle["ckpt"]),
            "--images": str(mobile_bundle["images"]), "--methods": "saliency"}  # fmt: skip
    args.update(change)
    assert main(["explain", *[v for kv in args.items() for v in kv]]) == 1
    assert message in capsys.readouterr().err


def test_helpers(tmp_path):
    assert parse_overrides(["a=64", "b#c=[1, 2]", "d=true", "e=text"]) == {
        "a": 64,
        "b#c": [1, 2],
        "d": True,
        "e": "text",
    }
    with pytest.raises(ValueError, match="'oops'"):
        parse_overrides(["oops"])
    assert [histology_label(n) for n in ("T_12.jpg", "N_3.png", "X_1.jpg", "TN_1.jpg")] == [1, 0, None, None]
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="notes.txt"):
        list_image_files([tmp_path / "notes.txt"])
