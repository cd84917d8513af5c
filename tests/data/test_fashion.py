"""FashionMNIST idx I/O against torchvision's reader (plain and gzip), the two dataset layouts, the synthetic default,
splits and inference inputs."""

from __future__ import annotations

import collections
import gzip
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import FashionMNIST
from torchvision.datasets.mnist import read_image_file, read_label_file, read_sn3_pascalvincent_tensor

from medkit.data.fashion import (
    CLASS_NAMES,
    RAW_FILES,
    find_fashion_files,
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


def _gzip(path, name=None):
    # the .gz file next to (or instead of) ``path``, as the official downloads come
    out = path.with_name(name or f"{path.name}.gz")
    out.write_bytes(gzip.compress(path.read_bytes()))
    return out


def test_gzipped_idx_is_read_by_content(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (3, 5, 4), dtype=np.uint8)
    gz = _gzip(write_idx(tmp_path / "images", images))
    np.testing.assert_array_equal(read_idx(gz), images)
    np.testing.assert_array_equal(read_idx(_gzip(gz.with_suffix(""), "no-suffix")), images)  # gzip by content
    gz.write_bytes(gz.read_bytes()[:-12])  # cut inside the deflate stream
    with pytest.raises(ValueError, match=r"images\.gz: damaged gzip file"):
        read_idx(gz)
    (tmp_path / "text").write_text("not idx")
    with pytest.raises(ValueError, match=r"text\.gz is not an idx file"):
        read_idx(_gzip(tmp_path / "text"))
    write_idx(tmp_path / "short", np.zeros((2, 3), np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"short\.gz: 17 bytes decompressed, but the header .2, 3. uint8 needs 18"):
        read_idx(_gzip(tmp_path / "short"))


def test_bad_idx_files_are_named(tmp_path):
    (tmp_path / "x.gz").write_bytes(b"\x1f\x8b\x08\x00rest")
    with pytest.raises(ValueError, match=r"x\.gz: damaged gzip file"):
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


def test_a_folder_with_neither_layout_names_what_was_looked_for(tmp_path):
    (tmp_path / "d").mkdir()
    write_idx(tmp_path / "d" / "train-images-idx3-ubyte", np.zeros((2, 4, 4), np.uint8))  # no labels: not a pair
    looked_for = (
        r"looked for the official four \(train-images-idx3-ubyte, .*t10k-labels-idx1-ubyte, each plain or \.gz\)"
    )
    with pytest.raises(
        FileNotFoundError, match=rf"no FashionMNIST idx files in .*d/FashionMNIST/raw or .*d: {looked_for}"
    ):
        prepare_fashion_datalists(tmp_path / "d", tmp_path / "run")
    for name in ("a", "b"):
        write_idx(tmp_path / "d" / f"{name}-images-idx3-ubyte", np.zeros((2, 4, 4), np.uint8))
        write_idx(tmp_path / "d" / f"{name}-labels-idx1-ubyte", np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match=r"2 idx image/label pairs \['a', 'b'\]; keep one pair"):
        prepare_fashion_datalists(tmp_path / "d", tmp_path / "run")


@pytest.mark.parametrize("folder", ["FashionMNIST/raw", "."], ids=["raw", "root"])
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_official_files_plain_or_gzipped_in_raw_or_root(tmp_path, folder, compress):
    plain = generate_fashion_dataset(tmp_path / "plain", num_train=20, num_test=10, seed=2)
    expected = prepare_fashion_datalists(plain, tmp_path / "run_plain", seed=3)
    (tmp_path / "d" / folder).mkdir(parents=True, exist_ok=True)
    for name in RAW_FILES["train"] + RAW_FILES["test"]:
        source = raw_folder(plain) / name
        if compress:
            _gzip(source, name + ".gz").rename(tmp_path / "d" / folder / f"{name}.gz")
        else:
            shutil.copy(source, tmp_path / "d" / folder / name)
    files = find_fashion_files(tmp_path / "d")
    assert set(files) == {"train", "test"} and files["test"][1].name.endswith(".gz") is compress
    lists = prepare_fashion_datalists(tmp_path / "d", tmp_path / "run", seed=3)
    assert lists["layout"] == "official"
    for part in ("train", "val", "test"):  # the same split and pixels as from the plain files in FashionMNIST/raw
        assert [i["id"] for i in lists[part]] == [i["id"] for i in expected[part]]
        np.testing.assert_array_equal(lists[part][-1]["image"], expected[part][-1]["image"])


def _pair(folder, per_class=6, compress=True):
    # per_class images of each class in class order, like the shared sample; pixel (0, 0) holds the index
    labels = np.repeat(np.arange(10, dtype=np.uint8), per_class)
    images = np.zeros((len(labels), 28, 28), np.uint8)
    images[:, 0, 0] = np.arange(len(labels))
    for name, array in (("sample-images-idx3-ubyte", images), ("sample-labels-idx1-ubyte", labels)):
        path = write_idx(folder / name, array)
        if compress:
            _gzip(path)
            path.unlink()
    return folder


def test_a_single_pair_is_split_stratified_by_seed(tmp_path, caplog):
    root = _pair(tmp_path / "sample")
    lists = prepare_fashion_datalists(root, tmp_path / "run", seed=0)
    assert lists["layout"] == "pair" and "NOT an official FashionMNIST split" in caplog.text
    # 60 images, 6 per class: 4/1/1 per class (PAIR_FRACTIONS 4/6, 1/6, 1/6)
    for part, per_class in (("train", 4), ("val", 1), ("test", 1)):
        assert collections.Counter(i["label"] for i in lists[part]) == dict.fromkeys(range(10), per_class)
        for item in lists[part]:  # each id points at its own image and label
            index = int(item["id"].removeprefix("sample:"))
            assert item["image"][0, 0] == index and item["label"] == index // 6
    ids = {part: [i["id"] for i in lists[part]] for part in ("train", "val", "test")}
    assert sorted(sum(ids.values(), []), key=lambda i: int(i[7:])) == [f"sample:{i}" for i in range(60)]  # disjoint
    again = prepare_fashion_datalists(root, tmp_path / "run_again", seed=0)
    assert {part: [i["id"] for i in again[part]] for part in ids} == ids
    other = prepare_fashion_datalists(root, tmp_path / "run_seed1", seed=1)
    assert [i["id"] for i in other["test"]] != ids["test"]
    subset = prepare_fashion_datalists(root, tmp_path / "run_subset", seed=0, max_train_images=12)
    assert len(subset["train"]) == 12 and [i["id"] for i in subset["test"]] == ids["test"]
    assert [i["id"] for i in read_fashion_inputs(root)][:2] == ["sample:0", "sample:1"]


def test_a_pair_too_small_to_stratify_names_the_file(tmp_path):
    root = _pair(tmp_path / "tiny", per_class=2, compress=False)
    with pytest.raises(ValueError, match=r"sample-labels-idx1-ubyte: 20 images cannot be split stratified 13/3/4"):
        prepare_fashion_datalists(root, tmp_path / "run")


def test_real_sample_is_900_images_90_per_class(real_data_dir, tmp_path):
    root = real_data_dir / "fashion_mnist_sample"
    lists = prepare_fashion_datalists(root, tmp_path / "run", seed=0)
    assert lists["layout"] == "pair" and not lists["synthetic"]
    labels = {part: collections.Counter(i["label"] for i in lists[part]) for part in ("train", "val", "test")}
    assert sum(labels.values(), collections.Counter()) == dict.fromkeys(range(10), 90)
    assert [labels[part] for part in labels] == [dict.fromkeys(range(10), n) for n in (60, 15, 15)]
    assert lists["train"][0]["image"].shape == (28, 28)


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
