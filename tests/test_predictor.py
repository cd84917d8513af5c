"""medkit.Predictor: a bundle on arrays in memory gives what the bundle gives on files, from any working directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, run_bundle_in_process
from monai.bundle import ConfigParser
from PIL import Image

import medkit
from medkit.data.synthetic_nuclei import generate_nuclei_dataset
from medkit.data.synthetic_shapes import generate_shapes_dataset


def _weights(bundle: str, folder: Path, settings: dict, centre: bool = False) -> Path:
    """Random weights of the bundle's network with ``settings``, saved as a run would (model.pt + run_settings);
    ``centre`` shifts the head's bias by each output channel's median logit, so masks are neither empty nor full."""
    parser = ConfigParser()
    parser.read_config(str(REPO_ROOT / "bundles" / bundle / "configs" / "train.json"))
    for key, value in settings.items():
        parser[key] = value
    torch.manual_seed(0)
    net = parser.get_parsed_content("network_def")
    if centre:
        with torch.no_grad():
            logits = net.eval()(torch.randn(1, 1, *settings["spatial_size"]))
            net.head.bias -= logits.transpose(0, 1).flatten(1).median(dim=1).values
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), folder / "model.pt")
    (folder / "run_settings.json").write_text(json.dumps({**settings, "output_dir": str(folder), "epochs": 3}))
    return folder / "model.pt"


def test_nuclei_masks_equal_the_bundles_inference_on_the_same_files(tmp_path, monkeypatch):
    data = generate_nuclei_dataset(tmp_path / "data", num_images=6, image_size=40, seed=0)
    settings = {"channels": [4, 8, 16], "spatial_size": [64, 64]}
    weights = _weights("nuclei_seg", tmp_path / "run", settings, centre=True)
    files = sorted(data.rglob("images/*.png"))[:4]
    # the Python API, from another working directory, on arrays as PIL gives them (RGBA, 40 x 40)
    monkeypatch.chdir(tmp_path)
    before = sorted(os.listdir(tmp_path))
    # float32 on both sides: the centred logits sit near 0, where bf16 rounding (which differs between batch sizes)
    # would flip pixels
    predictor = medkit.Predictor.from_bundle(
        REPO_ROOT / "bundles" / "nuclei_seg", weights=weights, device="cpu", overrides={"cpu_bf16": False}
    )
    masks = predictor.predict([np.asarray(Image.open(f)) for f in files], batch_size=3)
    assert sorted(os.listdir(tmp_path)) == before, "nothing written in the working directory"
    assert Path.cwd() == tmp_path
    # the bundle's own inference on the files
    monkeypatch.chdir(REPO_ROOT)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for f in files:
        (inputs / f.name).write_bytes(f.read_bytes())
    out = tmp_path / "pred"
    run_bundle_in_process(
        "run", "--config_file", str(REPO_ROOT / "bundles" / "nuclei_seg" / "configs" / "inference.json"),
        "--input_dir", str(inputs), "--output_dir", str(out), "--ckpt_path", str(weights),
        "--spatial_size", "[64,64]", "--channels", "[4,8,16]", "--cpu_bf16", "false",
    )  # fmt: skip
    for f, mask in zip(files, masks):
        written = np.asarray(Image.open(next(out.rglob(f"{f.stem}.png"))))  # not its _instances.png
        assert mask.shape == written.shape == (40, 40)
        differ = int(((mask > 0) != (written > 0)).sum())
        assert differ == 0, f"{f.name}: {differ} pixels differ"
    assert any(m.any() for m in masks) and not all(m.all() for m in masks), "a non-trivial comparison"


def test_multiclass_segmentation_gives_class_indices_at_the_input_size(tmp_path):
    data = generate_shapes_dataset(tmp_path / "data", num_images=3, image_size=32, seed=0)
    weights = _weights("shapes_seg", tmp_path / "run", {"channels": [4, 8]})
    predictor = medkit.Predictor.from_bundle("shapes_seg", weights=weights, device="cpu")
    image = np.asarray(Image.open(sorted(data.rglob("*.png"))[0]).convert("RGB"))[:, :28]  # not square
    (labels,) = predictor.predict([image])
    assert labels.shape == (32, 28) and labels.dtype == np.uint8 and labels.max() < 6


def test_classifier_gives_probabilities_and_tensors_pass_as_channel_first(tmp_path):
    weights = _weights("medmnist_cls", tmp_path / "run", {"network": "mlp"})
    predictor = medkit.Predictor.from_bundle("medmnist_cls", weights=weights, device="cpu")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (28, 28), dtype=np.uint8) for _ in range(5)]
    probs = predictor.predict(images, batch_size=2)
    assert len(probs) == 5 and all(p.shape == (1,) and 0 < p[0] < 1 for p in probs)
    again = predictor.predict([torch.as_tensor(images[0])[None].float()])
    np.testing.assert_allclose(again[0], probs[0], rtol=1e-5)
    assert predictor.threshold is None  # no threshold.json beside the weights


def test_classifier_carries_the_threshold_saved_with_the_weights(tmp_path):
    weights = _weights("medmnist_cls", tmp_path / "run", {"network": "mlp"})
    (tmp_path / "run" / "threshold.json").write_text(json.dumps({"threshold": 0.375, "val_accuracy": 0.9}))
    predictor = medkit.Predictor.from_bundle("medmnist_cls", weights=weights, device="cpu")
    assert predictor.threshold == 0.375


def test_dna_sequences_of_different_lengths(tmp_path):
    weights = _weights("dna_binding", tmp_path / "run", {"hidden_dim": 8})
    predictor = medkit.Predictor.from_bundle("dna_binding", weights=weights, device="cpu")
    probs = predictor.predict(["ACGTACGTTGACTCAGCA", "TTTT", "GATTACAGATTACA"], batch_size=2)
    single = predictor.predict(["TTTT"])
    assert [p.shape for p in probs] == [(1,), (1,), (1,)]
    np.testing.assert_allclose(single[0], probs[1], rtol=1e-5)  # padding in a batch changes nothing


def test_missing_weights_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"weights .*missing.pt not found: pass weights=<run folder>/model.pt"):
        medkit.Predictor.from_bundle("nuclei_seg", weights=tmp_path / "missing.pt")


def test_a_runs_settings_reach_a_per_network_table(tmp_path):
    """retina saves ``channels`` as the list of the network it used; it goes back into ``channels#unet``."""
    weights = _weights("retina_vessel_seg", tmp_path / "run", {"channels#unet": [4, 8, 16]})
    (tmp_path / "run" / "run_settings.json").write_text(json.dumps({"network_name": "unet", "channels": [4, 8, 16]}))
    predictor = medkit.Predictor.from_bundle("retina_vessel_seg", weights=weights, device="cpu")
    image = np.random.default_rng(0).integers(0, 255, (40, 36, 3), dtype=np.uint8)
    (mask,) = predictor.predict([image])
    assert mask.shape == (40, 36) and set(np.unique(mask)) <= {0, 1}
