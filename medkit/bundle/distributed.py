"""Data-parallel training for every bundle: the process group, the device of each rank, samplers and rank-0 output.

A bundle trains on several GPUs, or several nodes, with its ``configs/multi_gpu_train.json`` layer under ``torchrun``::

    torchrun --nproc_per_node=2 -m monai.bundle run \\
        --config_file "['bundles/nuclei_seg/configs/train.json','bundles/nuclei_seg/configs/multi_gpu_train.json']"

:func:`medkit.bundle.start_run` joins the process group when ``torchrun`` started the process (``nccl`` on CUDA,
``gloo`` on CPU); the layer gives each rank its device (:func:`local_device`), its share of the data
(:func:`distributed_sampler`) and a TensorBoard writer on rank 0 only (:func:`rank0_summary_writer`);
:func:`medkit.bundle.build_trainer` wraps the network in ``DistributedDataParallel`` and keeps logs, checkpoints and
summaries on rank 0. Nothing here does anything in a single process.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist

__all__ = [
    "broadcast_buffers",
    "distributed_sampler",
    "end_distributed",
    "gather_lists",
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "launched_by_torchrun",
    "local_device",
    "main_process_first",
    "rank0_summary_writer",
    "reduce_sum",
    "wrap_ddp",
]

logger = logging.getLogger(__name__)

_F = TypeVar("_F", bound=Callable[..., Any])


def launched_by_torchrun() -> bool:
    """Whether ``torchrun`` (or another launcher that sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``) started us."""
    return all(name in os.environ for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def is_distributed() -> bool:
    """Whether this process is one rank of an initialised process group."""
    return dist.is_available() and dist.is_initialized()


def is_main_process() -> bool:
    """Rank 0, or the only process: the one that logs, writes checkpoints, TensorBoard events and reports."""
    return not is_distributed() or dist.get_rank() == 0


def local_device() -> torch.device:
    """``cuda:<LOCAL_RANK>`` when CUDA is available (``cuda:0`` outside torchrun), else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def init_distributed(timeout_minutes: float = 30.0) -> bool:
    """Joins the process group ``torchrun`` set up; a no-op outside torchrun or when already joined.

    The backend is ``nccl`` when CUDA is available, else ``gloo``. Each rank's CUDA device is set to its local rank.
    Ranks above 0 log at WARNING, so the run's log reads as one process's. Ignite's own distributed context is set
    up here on every rank: ignite creates it lazily in a collective call, and a handler that only rank 0 builds (the
    checkpoint saver) would otherwise wait there for the other ranks forever.

    Args:
        timeout_minutes: how long a collective waits for the other ranks before failing.

    Returns:
        Whether this process is part of a process group.
    """
    if is_distributed():
        return True
    if not launched_by_torchrun():
        return False
    import datetime

    import ignite.distributed as idist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(local_device())
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=timeout_minutes))
    idist.sync()
    rank, world = dist.get_rank(), dist.get_world_size()
    if rank > 0:
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger("medkit").setLevel(logging.WARNING)
    logger.info("distributed: %d processes (%s), this is rank %d on %s", world, backend, rank, local_device())
    return True


def main_process_first(function: _F) -> _F:
    """Decorates a function that writes shared files (generated data, ``datalist.json``): under torchrun rank 0 runs
    it first, the other ranks after it finished (and so read what it wrote); in a single process it just runs."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        distributed = is_distributed()
        if distributed and not is_main_process():
            dist.barrier()
        try:
            return function(*args, **kwargs)
        finally:
            if distributed and is_main_process():
                dist.barrier()

    return wrapper  # type: ignore[return-value]


def end_distributed() -> None:
    """Leaves the process group, if this process joined one."""
    if is_distributed():
        dist.barrier()
        dist.destroy_process_group()


def wrap_ddp(network: torch.nn.Module, device: torch.device | str | None = None) -> torch.nn.Module:
    """``network`` in ``DistributedDataParallel`` when this process is one rank of a group, else ``network``.

    Args:
        network: the network, already on ``device``.
        device: its device; a CUDA device becomes DDP's ``device_ids``.
    """
    if not is_distributed() or isinstance(network, torch.nn.parallel.DistributedDataParallel):
        return network
    device = torch.device(device) if device is not None else next(network.parameters()).device
    ids = [device] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(network, device_ids=ids)


def broadcast_buffers(network: torch.nn.Module) -> None:
    """Copies rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP syncs buffers at the start of each training forward, so after the last iteration each rank holds statistics
    updated by its own batch. Broadcasting before validation makes every rank score the weights rank 0 saves.
    """
    if not is_distributed():
        return
    module = getattr(network, "module", network)
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)


def reduce_sum(*values: float, device: torch.device | str = "cpu") -> list[float]:
    """The sums of ``values`` over all ranks (the values themselves in a single process)."""
    if not is_distributed():
        return [float(v) for v in values]
    if dist.get_backend() == "nccl":
        device = local_device()
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def gather_lists(values: list) -> list:
    """Every rank's ``values`` (picklable items) concatenated in rank order; ``values`` in a single process."""
    if not is_distributed():
        return list(values)
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, list(values))
    return [item for part in gathered for item in part]


def distributed_sampler(dataset: Any, shuffle: bool = True, even_divisible: bool | None = None) -> Any:
    """Each rank's share of ``dataset``: MONAI's ``DistributedSampler``, or ``None`` in a single process.

    Args:
        dataset: the dataset to split.
        shuffle: reshuffle every epoch (training); the trainer sets the epoch, so ranks agree on the order.
        even_divisible: pad so that every rank gets as many items (training, where DDP needs equal iterations);
            ``None`` means ``shuffle``: validation leaves it uneven, so every item is scored once.
    """
    if not is_distributed():
        return None
    from monai.data import DistributedSampler

    even = shuffle if even_divisible is None else even_divisible
    return DistributedSampler(dataset=dataset, shuffle=shuffle, even_divisible=even)


def rank0_summary_writer(log_dir: str | os.PathLike) -> Any:
    """A TensorBoard ``SummaryWriter`` on rank 0 (or in a single process), ``None`` elsewhere (no event files)."""
    if not is_main_process():
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir))
