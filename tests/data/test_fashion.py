"""FashionMNIST idx I/O against torchvision's reader, the synthetic default, splits and inference inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import FashionMNIST
from torchvision.datasets.mnist import read_image_file, read_label_file, read_sn3_pascalvincent_tensor

from medkit.data.fashion import (
    CLASS_NAMES,
    RAW_FILES,
    prepare_fashion_datalists,
    raw_folder,
    read_fashion_inputs,
    read_fashion_split,
    read_idx,
    write_idx,
)
from medkit.data.synthetic_fashion import generate_fashion_dataset, synthesize_garment


def test_idx_round_trip_matches_torchvision(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 0, 9, 1, 1], dtype=np.uint8)
    write_idx(tmp_path / "images", images)
    write_idx(tmp_path / "labels", labels)
    # the header torchvision and LeCun's page describe: 0x00000803, then N, 28, 28 big-endian
    assert (tmp_path / "images").read_bytes()[:16] == bytes([0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28])
    np.testing.assert_array_equal(read_image_file(str(tmp_path / "images")).numpy(), images)
    np.testing.assert_array_equal(read_label_file(str(tmp_path / "labels")).numpy(), labels)
    np.testing.assert_array_equal(read_idx(tmp_path / "images"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), labels)


@pytest.mark.parametrize("dtype", [np.int32, np.float32, np.int16], ids=["int32", "float32", "int16"])
def test_other_idx_types_round_trip(tmp_path, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    write_idx(tmp_path / "a", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), array)
    torch.testing.assert_close(read_sn3_pascalvincent_tensor(str(tmp_path / "a"), strict=False).numpy(), array,
                               check_dtype=False)  # fmt: skip


def test_bad_idx_files_are_named(tmp_path):
    (tmp_path / "x.gz").write_bytes(b"\x1f\x8b\x08\x00rest")
    with pytest.raises(ValueError, match=r"x\.gz is not an idx file"):
        read_idx(tmp_path / "x.gz")
    write_idx(tmp_path / "short", np.zeros((2, 3), np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(ValueError, match="short: 17 bytes, but the header .2, 3. uint8 needs 18"):
        read_idx(tmp_path / "short")
    with pytest.raises(TypeError, match="complex"):
        write_idx(tmp_path / "c", np.zeros(2, np.complex64))


def test_generated_set_loads_with_torchvision_and_is_balanced(tmp_path):
    root = generate_fashion_dataset(tmp_path / "fm", num_train=30, num_test=20, seed=1)
    assert sorted(p.name for p in raw_folder(root).iterdir()) == sorted(RAW_FILES["train"] + RAW_FILES["test"])
    train = FashionMNIST(str(root), train=True, download=False)
    assert train.data.shape == (30, 28, 28) and train.data.dtype == torch.uint8
    assert torch.bincount(train.targets, minlength=10).tolist() == [3] * 10
    assert train.classes == list(CLASS_NAMES)
    x, y = read_fashion_split(root, train=False)
    assert x.shape == (20, 28, 28) and y.dtype == np.int64 and sorted(set(y.tolist())) == list(range(10))
    again = generate_fashion_dataset(tmp_path / "fm2", num_train=30, num_test=20, seed=1)
    assert (raw_folder(again) / RAW_FILES["train"][0]).read_bytes() == (
        raw_folder(root) / RAW_FILES["train"][0]
    ).read_bytes()
    assert "NOT real data" in (root / "SYNTHETIC.md").read_text()


def test_garments_differ_between_classes():
    rng = np.random.default_rng(0)
    means = np.stack([np.mean([synthesize_garment(rng, k) for _ in range(20)], axis=0) for k in range(10)])
    # class-mean images are far apart compared with the pixel range: a nearest-mean classifier beats chance easily
    rng = np.random.default_rng(1)
    hits = sum(
        int(np.argmin(((means - synthesize_garment(rng, k).astype(float)) ** 2).sum(axis=(1, 2))) == k)
        for k in range(10)
        for _ in range(5)
    )
    assert hits >= 35  # of 50; chance is 5
    with pytest.raises(ValueError, match="10"):
        synthesize_garment(rng, 10)


def test_prepare_generates_the_default_and_reuses_the_split(tmp_path, caplog):
    default = tmp_path / "data" / "fashion"
    out = tmp_path / "run"
    lists = prepare_fashion_datalists(default, out, seed=0, default_dataset_dir=default, num_synthetic=(40, 20))
    assert lists["synthetic"] is True and "SYNTHETIC" in caplog.text
    assert [len(lists[k]) for k in ("train", "val", "test")] == [36, 4, 20]
    item = lists["train"][0]
    assert set(item) == {"id", "image", "label"} and item["image"].shape == (28, 28)
    ids = {k: [i["id"] for i in lists[k]] for k in ("train", "val")}
    assert not set(ids["train"]) & set(ids["val"])
    saved = json.loads((out / "datalist.json").read_text())
    assert saved["val"] == ids["val"] and saved["test"][0] == "test:0"
    again = prepare_fashion_datalists(default, out, seed=0, default_dataset_dir=default)
    assert [i["id"] for i in again["val"]] == ids["val"]
    subset = prepare_fashion_datalists(default, tmp_path / "run2", seed=0, max_train_images=20)
    assert len(subset["train"]) + len(subset["val"]) == 20


def test_missing_data_outside_the_default_says_where_files_go(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"FashionMNIST/raw.*zalandoresearch"):
        prepare_fashion_datalists(tmp_path / "elsewhere", tmp_path / "run", default_dataset_dir=tmp_path / "d")


def test_inference_inputs_from_root_idx_file_and_pngs(tmp_path):
    root = generate_fashion_dataset(tmp_path / "fm", num_train=10, num_test=10)
    assert [i["id"] for i in read_fashion_inputs(root)][:2] == ["test:0", "test:1"]
    idx_file = raw_folder(root) / RAW_FILES["test"][0]
    assert len(read_fashion_inputs(idx_file)) == 10
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    Image.fromarray(np.full((28, 28, 3), 7, np.uint8)).save(pngs / "shoe.png")
    (pngs / "notes.txt").write_text("x")
    items = read_fashion_inputs(pngs)
    assert [i["id"] for i in items] == ["shoe"] and items[0]["image"].shape == (28, 28)
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        read_fashion_inputs(tmp_path / "nothing_here")
