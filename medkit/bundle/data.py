"""The data path every bundle shares: where the deterministic transforms' output is cached, and the loader.

A bundle's datasets call :func:`cached_dataset` with its ``cache`` setting and its loaders :func:`data_loader`:

- ``gpu``: the deterministic transforms run once and their output is kept on the training device; the random
  transforms then run there too (MONAI's torch-backend transforms), batches are collated on the device by a
  ``ThreadDataLoader`` and no batch is copied from the host during training.
- ``ram``: the output is cached in host memory (MONAI's ``CacheDataset``); random transforms run on the CPU,
  in ``num_workers`` processes.
- ``disk``: the output is cached as files (MONAI's ``PersistentDataset``), for data larger than memory.
- ``none``: every transform runs for every item in every epoch.
- ``auto`` (the default): ``gpu`` when the network trains on CUDA, every random transform has a torch backend and
  the cache fits in half of the free GPU memory; otherwise ``ram`` when it fits in half of the available host
  memory; otherwise ``disk``. The choice and the estimate behind it are logged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import CacheDataset, DataLoader, Dataset, PersistentDataset, ThreadDataLoader
from monai.data.utils import json_hashing
from monai.transforms import Compose, RandomizableTrait, Transform
from monai.utils import TransformBackends, convert_to_tensor

from medkit.bundle.errors import UserError

__all__ = [
    "CACHE_MODES",
    "ToDevice",
    "cached_dataset",
    "choose_cache",
    "data_loader",
    "device_pipeline",
    "split_random",
]

# the share of free GPU memory (or available host memory) the cache may take when ``auto`` decides
_MEMORY_SHARE = 0.5
CACHE_MODES = ("auto", "gpu", "ram", "disk", "none")
logger = logging.getLogger(__name__)


class ToDevice(Transform):
    """Moves every array and tensor of a data dictionary (or an array itself) to ``device`` as a plain tensor.

    The last deterministic transform of the ``gpu`` cache: what ``CacheDataset`` keeps is then already on the device.

    Args:
        device: the target device.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)

    def _move(self, value: Any) -> Any:
        if isinstance(value, (torch.Tensor, np.ndarray)):
            return convert_to_tensor(value, device=self.device, track_meta=False)
        return value

    def __call__(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {key: self._move(value) for key, value in data.items()}
        return self._move(data)


def _transforms(transform: Any) -> list:
    if transform is None:
        return []
    if isinstance(transform, Compose):
        return list(transform.transforms)
    if isinstance(transform, Sequence):
        return list(transform)
    return [transform]


def split_random(transform: Any) -> tuple[list, list]:
    """``transform`` cut where ``CacheDataset`` stops caching: before the first random (or non-MONAI) transform.

    Returns:
        The deterministic transforms and the rest.
    """
    items = _transforms(transform)
    for i, t in enumerate(items):
        if isinstance(t, RandomizableTrait) or not isinstance(t, Transform):
            return items[:i], items[i:]
    return items, []


def _not_on_torch(transforms: Sequence[Any]) -> list[str]:
    """Names of the transforms that cannot run on device tensors (no torch backend)."""
    return [type(t).__name__ for t in transforms if TransformBackends.TORCH not in getattr(t, "backend", ())]


def _nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.element_size() * value.nelement()
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, Mapping):
        return sum(_nbytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    return 0


def _available_host_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def choose_cache(
    data: Sequence[Any], transform: Any, device: torch.device | str | None, cache: str = "auto"
) -> tuple[str, str]:
    """The cache mode for ``data`` and why: ``cache`` itself unless it is ``auto`` (see the module docstring).

    Args:
        data: the dataset's items.
        transform: its transforms (deterministic first).
        device: where the network trains.
        cache: one of :data:`CACHE_MODES`.

    Returns:
        The mode and a one-line reason.
    """
    cache = str(cache).lower()
    if cache not in CACHE_MODES:
        raise UserError(f"cache {cache!r} is not one of {', '.join(CACHE_MODES)} (set it with --cache)")
    device = torch.device(device) if device is not None else torch.device("cpu")
    deterministic, random = split_random(transform)
    if cache == "gpu":
        if device.type != "cuda":
            raise UserError(f"--cache gpu needs a CUDA device, but the network trains on {device}: use --cache ram")
        slow = _not_on_torch(random)
        if slow:
            raise UserError(f"--cache gpu: {', '.join(slow)} cannot run on GPU tensors; use --cache ram")
        return "gpu", "asked for"
    if cache != "auto":
        return cache, "asked for"
    if not len(data):
        return "ram", "no items"
    item_bytes = _nbytes(Compose(deterministic)(data[0]) if deterministic else data[0])
    total = item_bytes * len(data)
    size = f"{len(data)} items x {item_bytes / 2**20:.2f} MiB = {total / 2**20:.1f} MiB"
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        slow = _not_on_torch(random)
        if slow:
            reason = f"{', '.join(slow)} cannot run on GPU tensors"
        elif total <= _MEMORY_SHARE * free:
            return "gpu", f"{size} fits in {free / 2**30:.1f} GiB free on {device}"
        else:
            reason = f"{size} exceeds half of the {free / 2**30:.1f} GiB free on {device}"
    else:
        reason = f"the network trains on {device}"
    host = _available_host_bytes()
    if total <= _MEMORY_SHARE * host:
        return "ram", f"{reason}; {size} fits in {host / 2**30:.1f} GiB of available host memory"
    return "disk", f"{reason}; {size} exceeds half of the {host / 2**30:.1f} GiB of available host memory"


def device_pipeline(transform: Any, device: torch.device | str) -> Compose:
    """``transform`` with :class:`ToDevice` between its deterministic and its random transforms: the ``gpu`` path."""
    deterministic, random = split_random(transform)
    return Compose([*deterministic, ToDevice(device), *random])


def cached_dataset(
    data: Sequence[Any],
    transform: Any,
    cache: str = "auto",
    device: torch.device | str | None = None,
    cache_dir: str | os.PathLike | None = None,
    **kwargs: Any,
) -> Dataset:
    """A dataset whose deterministic transforms run once, cached where ``cache`` says (module docstring).

    Args:
        data: the items (a datalist part).
        transform: the transforms, deterministic first (a ``Compose`` or a list).
        cache: ``auto``, ``gpu``, ``ram``, ``disk`` or ``none``.
        device: where the network trains (the ``gpu`` cache lives there).
        cache_dir: the ``disk`` cache's folder (default: ``./.medkit_cache``); items are keyed by their data and the
            deterministic transforms, so runs with the same preprocessing share it.
        kwargs: more ``CacheDataset`` arguments (``num_workers``, ``copy_cache``, ``progress``) for ``gpu``, ``ram``.

    Returns:
        The dataset; ``dataset.cache_device`` is the device its items come out on (``None`` for the host).
    """
    mode, reason = choose_cache(data, transform, device, cache)
    logger.info("cache %s for %d items: %s", mode, len(data), reason)
    kwargs.setdefault("progress", False)
    if mode == "gpu":
        # the cache is filled in this thread: CUDA tensors cannot be made in worker processes
        kwargs["num_workers"] = 0
        dataset: Dataset = CacheDataset(data, device_pipeline(transform, device), **kwargs)
        dataset.cache_device = torch.device(device)
        return dataset
    if mode == "ram":
        dataset = CacheDataset(data, transform, **kwargs)
    elif mode == "disk":
        folder = Path(cache_dir) if cache_dir is not None else Path(".medkit_cache")
        # the key hashes the deterministic transforms too: a changed pipeline does not read a stale cache
        dataset = PersistentDataset(data, transform, cache_dir=folder, hash_transform=json_hashing)
    else:
        dataset = Dataset(data, transform)
    dataset.cache_device = None
    return dataset


def data_loader(
    dataset: Any,
    batch_size: int = 1,
    shuffle: bool = False,
    num_workers: int = 0,
    sampler: Any = None,
    **kwargs: Any,
) -> DataLoader:
    """The loader for a bundle dataset: a ``ThreadDataLoader`` in this process for a ``gpu``-cached dataset (its items
    are on the device already), MONAI's ``DataLoader`` with ``num_workers`` processes otherwise; host memory is pinned
    when the network trains on CUDA.

    Args:
        dataset: from :func:`cached_dataset` (or any dataset).
        batch_size: items per batch.
        shuffle: reshuffle each epoch (not with a ``sampler``).
        num_workers: worker processes of the host path.
        sampler: a sampler, e.g. each rank's share under torchrun (:func:`medkit.bundle.distributed_sampler`).
        kwargs: more ``DataLoader`` arguments (``drop_last``, ``collate_fn``, ...).
    """
    if getattr(dataset, "cache_device", None) is not None:
        kwargs.pop("pin_memory", None)
        return ThreadDataLoader(
            dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler, num_workers=0, **kwargs
        )
    kwargs.setdefault("pin_memory", torch.cuda.is_available())
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler, num_workers=num_workers, **kwargs
    )
