"""PatchCamelyon HDF5 files: the reader, the patch reader (against PILReader on the same pixels), the bundle path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from monai.bundle import ConfigParser  # noqa: E402
from monai.data import PILReader  # noqa: E402
from monai.transforms import LoadImaged  # noqa: E402
from pcam_files import write_pcam_h5  # noqa: E402
from PIL import Image  # noqa: E402

from medkit.data import prepare_pcam_datalists  # noqa: E402
from medkit.data.pcam_h5 import PCamPatchReader, read_pcam_h5, read_pcam_patch  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]


def _rgb(image: Image.Image) -> Image.Image:
    return image.convert("RGB")


def test_read_pcam_h5_keeps_the_official_splits(tmp_path: Path) -> None:
    arrays = write_pcam_h5(tmp_path / "pcam")
    parts = read_pcam_h5(tmp_path / "pcam")
    assert {k: len(v) for k, v in parts.items()} == {"train": 6, "val": 4, "test": 4}
    x_file = str((tmp_path / "pcam" / "camelyonpatch_level_2_split_valid_x.h5").resolve())
    assert parts["val"][3] == {"image": f"{x_file}::3", "label": 1, "id": "valid_000003"}
    assert [item["label"] for item in parts["train"]] == arrays["train"][1].tolist() == [0, 1, 0, 1, 0, 1]
    np.testing.assert_array_equal(read_pcam_patch(parts["test"][2]["image"]), arrays["test"][0][2])
    with pytest.raises(ValueError, match="index 6 is past the last of 6 patches"):
        read_pcam_patch(f"{parts['train'][0]['image'][:-3]}::6")


def test_patch_reader_matches_pilreader_on_the_same_pixels(tmp_path: Path) -> None:
    arrays = write_pcam_h5(tmp_path / "pcam", {"train": 2, "valid": 1, "test": 1})
    png = tmp_path / "T_0.png"
    Image.fromarray(arrays["train"][0][1]).save(png)
    h5_name = f"{tmp_path / 'pcam' / 'camelyonpatch_level_2_split_train_x.h5'}::1"
    load = LoadImaged("image", reader=PCamPatchReader(converter=_rgb), image_only=True, ensure_channel_first=True)
    reference = LoadImaged("image", reader=PILReader(converter=_rgb), image_only=True, ensure_channel_first=True)
    from_h5, from_png = load({"image": h5_name})["image"], reference({"image": str(png)})["image"]
    assert from_h5.shape == (3, 96, 96)
    np.testing.assert_array_equal(from_h5.numpy(), from_png.numpy())  # same layout as PIL's (C, W, H)
    np.testing.assert_array_equal(from_h5.numpy()[:, 5, 7], arrays["train"][0][1][7, 5])
    np.testing.assert_array_equal(load({"image": str(png)})["image"].numpy(), from_png.numpy())  # files: PIL
    assert from_h5.meta["filename_or_obj"] == h5_name


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("x_shape", r"_train_x.h5: patches are uint8 \(6, 96, 96\); expected \(N, H, W, 3\) uint8 RGB"),
        ("labels", r"_test_y.h5: labels \[0, 2\] are not 0 \(normal\) and 1 \(tumour\)"),
        ("count", r"_valid_x.h5: 4 patches but 3 labels"),
        ("missing", r"lacks the PCam HDF5 files \['camelyonpatch_level_2_split_test_y.h5'\].*medkit data fetch pcam"),
    ],
    ids=["x-shape", "labels", "count", "missing"],
)
def test_read_pcam_h5_names_the_bad_file(tmp_path: Path, change: str, message: str) -> None:
    root = tmp_path / "pcam"
    write_pcam_h5(root)
    if change == "x_shape":
        with h5py.File(root / "camelyonpatch_level_2_split_train_x.h5", "w") as f:
            f.create_dataset("x", data=np.zeros((6, 96, 96), np.uint8))
    elif change == "labels":
        with h5py.File(root / "camelyonpatch_level_2_split_test_y.h5", "w") as f:
            f.create_dataset("y", data=np.array([0, 2, 0, 2], np.uint8).reshape(4, 1, 1, 1))
    elif change == "count":
        with h5py.File(root / "camelyonpatch_level_2_split_valid_y.h5", "w") as f:
            f.create_dataset("y", data=np.zeros((3, 1, 1, 1), np.uint8))
    else:
        (root / "camelyonpatch_level_2_split_test_y.h5").unlink()
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        read_pcam_h5(root)


def test_pcam_transfer_reads_an_hdf5_folder(tmp_path: Path) -> None:
    """The bundle's own datalists and deterministic transforms, on a folder holding only the six HDF5 files."""
    arrays = write_pcam_h5(tmp_path / "pcam")
    parser = ConfigParser()
    parser.read_config(str(REPO_ROOT / "bundles" / "pcam_transfer" / "configs" / "train.json"))
    parser["dataset_dir"] = str(tmp_path / "pcam")
    parser["output_dir"] = str(tmp_path / "run")
    parser["spatial_size"] = [32, 32]
    datalists = parser.get_parsed_content("datalists")
    assert datalists["format"] == "hdf5"
    assert [len(datalists[k]) for k in ("train", "val", "test")] == [6, 4, 4]
    assert (tmp_path / "run" / "datalist.json").is_file()
    preprocess = parser.get_parsed_content("validate#preprocessing")
    sample = preprocess(datalists["test"][1])
    assert tuple(sample["image"].shape) == (3, 32, 32) and sample["label"].tolist() == [1.0]
    mean = sample["image"].mean(dim=(1, 2)).numpy()
    # noise of mean ~127.5 through 0..1 scaling and the ImageNet normalisation: ((127.5 / 255) - mean_c) / std_c
    expected = (arrays["test"][0][1].reshape(-1, 3).mean(0) / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(mean, expected, atol=0.05)
    again = prepare_pcam_datalists(tmp_path / "pcam", tmp_path / "run")  # the saved split is reused
    assert again["test"] == datalists["test"]
