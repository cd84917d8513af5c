"""GPU utilisation sampled while something runs: ``nvidia-smi`` polled in a background thread (the benchmarks in
``scripts/bench_*.py`` report it beside their throughput)."""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from typing import Any

import torch

__all__ = ["GPUUtilisation"]

logger = logging.getLogger(__name__)


class GPUUtilisation:
    """Samples one GPU's SM utilisation and memory with ``nvidia-smi`` while a block of code runs.

    A background ``nvidia-smi --query-gpu=utilization.gpu,memory.used -lms <interval_ms>`` process writes one line
    per sample; a thread reads them. The sampler can be entered several times: samples accumulate, and
    :meth:`summary` describes all of them. Without CUDA or without ``nvidia-smi`` nothing runs and the summary says
    why.

    Args:
        interval_ms: milliseconds between samples.
        index: the GPU as ``nvidia-smi -i`` takes it (index or UUID); default: the first entry of
            ``CUDA_VISIBLE_DEVICES``, else ``0``.
        nvidia_smi: the ``nvidia-smi`` executable (looked up on ``PATH``).

    Example::

        gpu = GPUUtilisation()
        with gpu:
            train()
        print(gpu.summary())  # {"available": True, "sm_util_mean_pct": 71.5, ...}
    """

    def __init__(self, interval_ms: int = 200, index: int | str | None = None, nvidia_smi: str = "nvidia-smi") -> None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
        self.index = str(index) if index is not None else (visible or "0")
        self.interval_ms = int(interval_ms)
        self.nvidia_smi = nvidia_smi
        self.samples: list[tuple[float, float]] = []
        self.reason: str | None = None
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._stderr: Any = None
        self._first = threading.Event()

    def _unavailable(self) -> str | None:
        if not torch.cuda.is_available():
            return "CUDA is not available: training runs on the CPU"
        if shutil.which(self.nvidia_smi) is None:
            return f"{self.nvidia_smi} not found on PATH"
        return None

    def start(self) -> None:
        """Starts sampling, unless CUDA or ``nvidia-smi`` is missing (then :attr:`reason` says which)."""
        if self._proc is not None:
            raise RuntimeError("GPUUtilisation is already sampling")
        self.reason = self._unavailable()
        if self.reason is not None:
            logger.info("no GPU utilisation sampled: %s", self.reason)
            return
        query = ["--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"]
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._first.clear()
        self._proc = subprocess.Popen(
            [self.nvidia_smi, *query, "-lms", str(self.interval_ms), "-i", self.index],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, args=(self._proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: Iterable[str]) -> None:
        for line in stream:
            sample = _parse_sample(line)
            if sample is not None:
                self.samples.append(sample)
                self._first.set()
        self._first.set()  # nvidia-smi ended: nobody waits for a first sample any more

    def stop(self) -> None:
        """Stops sampling; a no-op when nothing runs."""
        if self._proc is None:
            return
        # nvidia-smi averages utilisation over the last fraction of a second, so a first sample that arrives just
        # after a short block still describes it
        self._first.wait(timeout=max(1.0, 3 * self.interval_ms / 1000))
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=5)
        self._stderr.seek(0)
        error = self._stderr.read().strip()
        self._stderr.close()
        if not self.samples:
            self.reason = f"{self.nvidia_smi} gave no samples" + (f": {error.splitlines()[0]}" if error else "")
        self._proc = self._reader = self._stderr = None

    def __enter__(self) -> GPUUtilisation:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def summary(self) -> dict[str, Any]:
        """Mean and max SM utilisation (%) and max memory used (MiB) over all samples so far.

        Returns:
            ``{"available", "gpu", "interval_ms", "samples", "sm_util_mean_pct", "sm_util_max_pct",
            "memory_used_max_mib"}``; without samples the three figures are ``None``, ``available`` is false and
            ``reason`` says why.
        """
        out: dict[str, Any] = {"available": bool(self.samples), "gpu": self.index, "interval_ms": self.interval_ms}
        out["samples"] = len(self.samples)
        if not self.samples:
            reason = self.reason or "nothing was sampled"
            return {
                **out,
                "reason": reason,
                "sm_util_mean_pct": None,
                "sm_util_max_pct": None,
                "memory_used_max_mib": None,
            }
        util = [u for u, _ in self.samples]
        out["sm_util_mean_pct"] = round(statistics.fmean(util), 1)
        out["sm_util_max_pct"] = max(util)
        out["memory_used_max_mib"] = max(m for _, m in self.samples)
        return out


def _parse_sample(line: str) -> tuple[float, float] | None:
    """``"37, 1024"`` -> ``(37.0, 1024.0)``; ``None`` for ``[N/A]`` fields and anything else."""
    try:
        util, memory = (float(field) for field in line.split(","))
    except ValueError:
        return None
    return util, memory
