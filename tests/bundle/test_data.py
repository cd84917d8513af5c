"""The shared data path: cache choice, the GPU pipeline against the host pipeline, loaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from monai.bundle import ConfigParser
from monai.data import CacheDataset, PersistentDataset, ThreadDataLoader
from monai.transforms import Compose, Lambdad, RandFlipd, ScaleIntensityd

from medkit.bundle import data as bundle_data
from medkit.bundle.errors import UserError
from medkit.data.synthetic_nuclei import generate_nuclei_dataset

BUNDLES = sorted(p.name for p in (REPO_ROOT / "bundles").iterdir() if (p / "configs" / "train.json").is_file())


def _items(n: int = 4) -> list[dict]:
    return [{"image": np.full((1, 8, 8), i, np.float32)} for i in range(n)]


def _pipeline() -> Compose:
    return Compose([ScaleIntensityd(keys="image", factor=1.0), RandFlipd(keys="image", prob=0.5, spatial_axis=0)])


def test_auto_on_the_cpu_caches_in_ram_and_says_why(caplog):
    caplog.set_level("INFO", logger="medkit.bundle.data")
    dataset = bundle_data.cached_dataset(_items(), _pipeline(), cache="auto", device="cpu")
    assert isinstance(dataset, CacheDataset) and dataset.cache_device is None
    assert "cache ram for 4 items: the network trains on cpu; 4 items x 0.00 MiB" in caplog.text


def test_auto_falls_back_to_disk_when_the_cache_exceeds_half_the_host_memory(monkeypatch):
    monkeypatch.setattr(bundle_data, "_available_host_bytes", lambda: 2 * 4 * 256 - 1)  # 4 items of 256 bytes
    mode, reason = bundle_data.choose_cache(_items(), _pipeline(), "cpu")
    assert mode == "disk" and "exceeds half" in reason
    monkeypatch.setattr(bundle_data, "_available_host_bytes", lambda: 2 * 4 * 256)
    assert bundle_data.choose_cache(_items(), _pipeline(), "cpu")[0] == "ram"


def test_auto_on_cuda_picks_gpu_only_when_it_fits_and_every_random_transform_runs_on_torch(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2 * 4 * 256, 10**12))
    assert bundle_data.choose_cache(_items(), _pipeline(), "cuda:0")[0] == "gpu"
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2 * 4 * 256 - 1, 10**12))
    assert bundle_data.choose_cache(_items(), _pipeline(), "cuda:0")[0] == "ram"
    numpy_only = Compose([ScaleIntensityd(keys="image"), Lambdad(keys="image", func=lambda x: x)])
    numpy_only.transforms[1].backend = [bundle_data.TransformBackends.NUMPY]
    numpy_only = Compose([numpy_only.transforms[0], RandFlipd(keys="image", prob=0.5), numpy_only.transforms[1]])
    mode, reason = bundle_data.choose_cache(_items(), numpy_only, "cuda:0")
    assert mode == "ram" and "Lambdad cannot run on GPU tensors" in reason


def test_bad_cache_settings_name_the_fix():
    with pytest.raises(UserError, match="cache 'fast' is not one of auto, gpu, ram, disk, none"):
        bundle_data.choose_cache(_items(), _pipeline(), "cpu", "fast")
    with pytest.raises(UserError, match="--cache gpu needs a CUDA device, but the network trains on cpu"):
        bundle_data.choose_cache(_items(), _pipeline(), "cpu", "gpu")


def test_disk_and_none_modes_give_the_ram_items(tmp_path):
    ram = bundle_data.cached_dataset(_items(), _pipeline(), cache="ram")
    disk = bundle_data.cached_dataset(_items(), _pipeline(), cache="disk", cache_dir=tmp_path / "c")
    none = bundle_data.cached_dataset(_items(), _pipeline(), cache="none")
    assert isinstance(disk, PersistentDataset) and type(none).__name__ == "Dataset"
    for dataset in (ram, disk, none):
        dataset.transform.set_random_state(3)
    for i in range(4):
        expected = torch.as_tensor(ram[i]["image"])
        torch.testing.assert_close(torch.as_tensor(disk[i]["image"]), expected)
        torch.testing.assert_close(torch.as_tensor(none[i]["image"]), expected)
    assert len(list((tmp_path / "c").glob("*.pt"))) == 4


def test_split_random_cuts_where_cache_dataset_stops():
    deterministic, random = bundle_data.split_random(_pipeline())
    assert [type(t).__name__ for t in deterministic] == ["ScaleIntensityd"]
    assert [type(t).__name__ for t in random] == ["RandFlipd"]


def test_to_device_converts_arrays_and_leaves_the_rest():
    out = bundle_data.ToDevice("cpu")({"image": np.ones((1, 2), np.float32), "name": "a", "label": 1})
    assert isinstance(out["image"], torch.Tensor) and type(out["image"]) is torch.Tensor
    assert out["name"] == "a" and out["label"] == 1


def test_gpu_loader_is_a_thread_loader_and_the_host_loader_is_not():
    dataset = bundle_data.cached_dataset(_items(), _pipeline(), cache="ram")
    assert not isinstance(bundle_data.data_loader(dataset, batch_size=2), ThreadDataLoader)
    dataset.cache_device = torch.device("cpu")  # as a gpu-cached dataset marks itself
    loader = bundle_data.data_loader(dataset, batch_size=2, num_workers=4, pin_memory=True)
    assert isinstance(loader, ThreadDataLoader) and loader.num_workers == 0 and not loader.pin_memory


def test_device_path_gives_the_host_path_results_for_nuclei(tmp_path):
    """The GPU path (cache after the deterministic transforms, moved to the device, random transforms there) gives
    the host path's samples, seed for seed. Here the device is the CPU, so they must agree exactly (tolerance 0); on
    CUDA the rotation's interpolation may differ in the last float bits."""
    data = generate_nuclei_dataset(tmp_path / "data", num_images=6, image_size=48, seed=0)
    parser = ConfigParser()
    parser.read_config(str(REPO_ROOT / "bundles" / "nuclei_seg" / "configs" / "train.json"))
    parser.update({"dataset_dir": str(data), "output_dir": str(tmp_path / "run"), "spatial_size": [48, 48]})
    items = parser.get_parsed_content("train#datalist")
    host = CacheDataset(items, parser.get_parsed_content("train#preprocessing", instantiate=True), progress=False)
    parser.parse()
    device = CacheDataset(
        items, bundle_data.device_pipeline(parser.get_parsed_content("train#preprocessing"), "cpu"), progress=False
    )
    host.transform.set_random_state(7)
    device.transform.set_random_state(7)
    for _epoch in range(3):
        for i in range(len(items)):
            a, b = host[i], device[i]
            for key in ("image", "label"):
                torch.testing.assert_close(torch.as_tensor(a[key]), torch.as_tensor(b[key]), atol=0, rtol=0)


@pytest.mark.parametrize("bundle", BUNDLES)
def test_every_random_training_transform_runs_on_torch_tensors(bundle, tmp_path):
    """So ``cache auto`` puts every bundle on the GPU path when CUDA is there (retina's presets included)."""
    parser = ConfigParser()
    parser.read_config(str(REPO_ROOT / "bundles" / bundle / "configs" / "train.json"))
    parser.update({"output_dir": str(tmp_path / "run")})
    _, random = bundle_data.split_random(parser.get_parsed_content("train#random_transforms"))
    assert bundle_data._not_on_torch(random) == [], f"{bundle}: these keep the GPU path off"
