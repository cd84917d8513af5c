"""medkit.data.medmnist: npz reader, synthetic generator, inference inputs, and the bundle's image transform."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, write_png
from monai.bundle import ConfigParser

from medkit.data.medmnist import (
    ZENODO_URL,
    find_medmnist_npz,
    generate_medmnist_npz,
    list_medmnist_inputs,
    medmnist_task_info,
    prepare_medmnist_datalists,
    read_medmnist_npz,
)


def _write_npz(path, counts=(5, 2, 3), flat=True, channels=1, num_classes=2):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in zip(("train", "val", "test"), counts):
        shape = (n, 28, 28) if channels == 1 else (n, 28, 28, channels)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        labels = (np.arange(n) % num_classes).astype(np.uint8)
        arrays[f"{split}_labels"] = labels if flat else labels[:, None]
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("flat", [True, False], ids=["labels_N", "labels_N1"])
def test_reader_accepts_flat_and_column_labels_and_any_counts(tmp_path, flat):
    path = _write_npz(tmp_path / "breastmnist.npz", counts=(5, 2, 3), flat=flat)
    splits = read_medmnist_npz(path, "breastmnist")
    assert {k: len(v[1]) for k, v in splits.items()} == {"train": 5, "val": 2, "test": 3}
    images, labels = splits["train"]
    assert images.shape == (5, 1, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (5,) and labels.dtype == np.int64 and labels.tolist() == [0, 1, 0, 1, 0]


def test_reader_moves_rgb_channels_first(tmp_path):
    path = _write_npz(tmp_path / "pathmnist.npz", channels=3, num_classes=9)
    assert read_medmnist_npz(path, "pathmnist")["val"][0].shape == (2, 3, 28, 28)


def test_reader_rejects_multilabel_and_wrong_channels(tmp_path):
    path = _write_npz(tmp_path / "x.npz")
    data = dict(np.load(path))
    data["train_labels"] = np.zeros((5, 3), np.uint8)
    np.savez(tmp_path / "multi.npz", **data)
    with pytest.raises(ValueError, match=r"multi-label \(N, K\) labels are not supported"):
        read_medmnist_npz(tmp_path / "multi.npz")
    with pytest.raises(ValueError, match="multi-label"):
        medmnist_task_info("chestmnist")
    with pytest.raises(ValueError, match="pathmnist expects 3 channels"):
        read_medmnist_npz(path, "pathmnist")


def test_missing_file_names_zenodo_and_destination(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        find_medmnist_npz(tmp_path, "breastmnist")
    assert ZENODO_URL in str(err.value) and str(tmp_path / "breastmnist.npz") in str(err.value)
    _write_npz(tmp_path / "breastmnist_64.npz")
    assert find_medmnist_npz(tmp_path, "breastmnist", size=64).name == "breastmnist_64.npz"


@pytest.mark.parametrize("flag", ["breastmnist", "octmnist", "pathmnist"])
def test_generator_follows_the_flag_and_is_learnable(tmp_path, flag):
    info = medmnist_task_info(flag)
    path = generate_medmnist_npz(tmp_path / f"{flag}.npz", flag=flag, counts=(40, 8, 12), seed=1)
    raw = np.load(path)
    assert raw["train_labels"].shape == (40, 1)
    assert raw["train_images"].ndim == (3 if info["n_channels"] == 1 else 4)
    images, labels = read_medmnist_npz(path, flag)["train"]
    assert sorted(set(labels.tolist())) == list(range(info["num_classes"]))
    # class structure is visible: mean brightness separates class 0 from the last class
    mean = images.reshape(len(images), -1).mean(1)
    assert mean[labels == 0].mean() < mean[labels == info["num_classes"] - 1].mean()


def test_prepare_generates_default_and_records_the_source(tmp_path, caplog):
    default = tmp_path / "synthetic"
    lists = prepare_medmnist_datalists(default, "breastmnist", tmp_path / "out", default_dataset_dir=default)
    assert [len(lists[s]) for s in ("train", "val", "test")] == [600, 100, 200]
    item = lists["val"][0]
    assert item["image"].shape == (1, 28, 28) and item["label"].shape == (1,)
    assert item["id"] == "val_00000" and item["source"] == "breastmnist"
    source = json.loads((tmp_path / "out" / "data_source.json").read_text())
    assert source["synthetic"] and source["flag"] == "breastmnist" and source["counts"]["test"] == 200
    assert "SYNTHETIC" in caplog.text
    with pytest.raises(FileNotFoundError, match="zenodo"):
        prepare_medmnist_datalists(tmp_path / "nothing", "breastmnist", tmp_path / "o2", default_dataset_dir=default)


def test_inference_inputs_from_pngs_and_npz(tmp_path):
    write_png(tmp_path / "in" / "a.png", np.full((28, 28), 7, np.uint8))
    write_png(tmp_path / "in" / "sub" / "b.png", np.zeros((40, 30, 3), np.uint8))
    items = list_medmnist_inputs(tmp_path / "in", "breastmnist")
    assert [i["id"] for i in items] == ["a", "sub/b"] and {i["source"] for i in items} == {"in"}
    assert all(i["image"].shape == (1, 28, 28) for i in items) and items[0]["image"].max() == 7
    npz = _write_npz(tmp_path / "t.npz")
    items = list_medmnist_inputs(npz, "breastmnist")
    assert [i["id"] for i in items] == ["t_00000", "t_00001", "t_00002"] and items[0]["source"] == "t"
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no images"):
        list_medmnist_inputs(tmp_path / "empty", "breastmnist")


def test_bundle_transform_is_the_medmnist_normalisation():
    parser = ConfigParser()
    parser.read_config(str(REPO_ROOT / "bundles" / "medmnist_cls" / "configs" / "train.json"))
    chain = parser.get_parsed_content("validate#preprocessing")
    image = np.array([[[0, 51, 255], [102, 204, 255], [0, 0, 0]]], np.uint8)
    out = chain({"image": np.pad(image, ((0, 0), (0, 25), (0, 25))), "label": np.array([1])})
    assert out["image"].shape == (1, 28, 28) and out["image"].dtype == torch.float32
    assert out["label"].dtype == torch.float32 and out["label"].shape == (1,)  # BCE target for the binary default
    expected = (image.astype(np.float32) / 255 - 0.5) / 0.5
    np.testing.assert_allclose(np.asarray(out["image"])[:, :3, :3], expected, atol=1e-6)


@pytest.mark.parametrize(
    ("flag", "class_counts"),
    [
        # byte-for-byte from a GitHub copy; split sizes and class counts are the official BreastMNIST ones
        ("breastmnist", {"train": [147, 399], "val": [21, 57], "test": [42, 114]}),
        # a SUBSET of PneumoniaMNIST: val and test are official, train has 3,882 of the official 4,708 images
        ("pneumoniamnist", {"train": [388, 3494], "val": [135, 389], "test": [234, 390]}),
    ],
    ids=["breastmnist-official-counts", "pneumoniamnist-shared-subset"],
)
def test_real_medmnist_files(real_data_dir, tmp_path, flag, class_counts):
    # exact counts of the shared files, from $MEDKIT_REAL_DATA/medmnist/PROVENANCE.md
    path = real_data_dir / "medmnist" / f"{flag}.npz"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    splits = read_medmnist_npz(find_medmnist_npz(path.parent, flag), flag)
    assert {s: np.bincount(labels, minlength=2).tolist() for s, (_, labels) in splits.items()} == class_counts
    for split, (images, _) in splits.items():
        assert images.shape == (sum(class_counts[split]), 1, 28, 28) and images.dtype == np.uint8, split
    # the bundle's datalists take the file as it is, whatever its counts (no medmnist len() assertion)
    lists = prepare_medmnist_datalists(path.parent, flag, tmp_path)
    assert {s: len(v) for s, v in lists.items()} == {s: sum(c) for s, c in class_counts.items()}
    assert not json.loads((tmp_path / "data_source.json").read_text())["synthetic"]
