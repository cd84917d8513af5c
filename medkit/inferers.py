"""Inferers that add mixed precision where MONAI's engines do not: bfloat16 autocast on CPUs that support it.

MONAI's ``SupervisedTrainer(amp=True)`` autocasts on CUDA only. On a CPU with native bfloat16 (AVX512-BF16 or AMX),
running the network under ``torch.autocast("cpu", dtype=torch.bfloat16)`` roughly halves a U-Net training step; the
output is cast back to float32 so losses and metrics are computed in full precision.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from monai.inferers import Inferer, SimpleInferer

from medkit.utils import as_bool

__all__ = ["AutocastInferer", "FlipTTAInferer", "ReverseComplementInferer", "cpu_bf16_supported", "use_cpu_bf16"]

logger = logging.getLogger(__name__)


def cpu_bf16_supported() -> bool:
    """True when this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX), where bf16 autocast is fast."""
    checker = getattr(torch.backends.mkldnn, "is_bf16_supported", None) or getattr(
        torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None
    )
    try:
        return bool(checker()) if checker is not None else False
    except Exception:  # an unusual build: fall back to full precision
        return False


def use_cpu_bf16(device: torch.device | str, enabled: bool | str = "auto") -> bool:
    """Decides whether to autocast to bfloat16 on ``device``: never on CUDA (the engines' AMP covers it).

    Args:
        device: the training device.
        enabled: ``True``/``False`` (or ``"true"``/``"false"``, as a command line gives them) to force, or
            ``"auto"`` to use bf16 when :func:`cpu_bf16_supported`.
    """
    if torch.device(device).type != "cpu":
        return False
    if isinstance(enabled, str) and enabled.strip().lower() == "auto":
        return cpu_bf16_supported()
    try:
        return as_bool(enabled)
    except ValueError:
        raise ValueError(f"cpu_bf16 must be true, false or auto, got {enabled!r}") from None


class AutocastInferer(Inferer):
    """Runs a wrapped inferer under ``torch.autocast`` and returns float32 outputs.

    Args:
        inferer: the inferer to wrap; :class:`monai.inferers.SimpleInferer` by default.
        device_type: autocast device type, ``"cpu"`` by default.
        dtype: the reduced precision type.
        enabled: when false, this is a plain pass-through to ``inferer``.
        memory_format: when given, 4D inputs are made contiguous in it first (``torch.channels_last`` speeds up
            convolutions under autocast and AMP); labels keep their layout, unlike the engines' ``to_kwargs``.
    """

    def __init__(
        self,
        inferer: Inferer | None = None,
        device_type: str = "cpu",
        dtype: torch.dtype = torch.bfloat16,
        enabled: bool = True,
        memory_format: torch.memory_format | None = None,
    ) -> None:
        self.inferer = inferer if inferer is not None else SimpleInferer()
        self.memory_format = memory_format
        self.device_type = device_type
        self.dtype = dtype
        self.enabled = bool(enabled)
        if self.enabled:
            logger.info("network runs under %s autocast (%s)", device_type, dtype)

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> Any:
        if self.memory_format is not None and isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=self.memory_format)
        if not self.enabled:
            return self.inferer(inputs, network, *args, **kwargs)
        with torch.autocast(self.device_type, dtype=self.dtype):
            out = self.inferer(inputs, network, *args, **kwargs)
        return out.float() if isinstance(out, torch.Tensor) and out.is_floating_point() else out


class FlipTTAInferer(Inferer):
    """Scores a classifier with flip test-time augmentation (:class:`medkit.networks.FlipTTA`) at inference time.

    As an inferer, not a network wrapper, the engine keeps the plain network: checkpoints load into it and are saved
    from it with their own parameter names, and training is untouched.

    Args:
        spatial_axes: the flips, as for :class:`medkit.networks.FlipTTA` (MONAI spatial axes; a tuple flips together).
        inferer: the inferer each view goes through; :class:`monai.inferers.SimpleInferer` by default.
    """

    def __init__(self, spatial_axes: Any = (1,), inferer: Inferer | None = None) -> None:
        self.spatial_axes = spatial_axes
        self.inferer = inferer if inferer is not None else SimpleInferer()

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> Any:
        from medkit.networks import FlipTTA

        views = FlipTTA(lambda x: self.inferer(x, network, *args, **kwargs), self.spatial_axes)
        return views(inputs)


class ReverseComplementInferer(Inferer):
    """Scores one-hot DNA with reverse-complement averaging (:class:`medkit.networks.ReverseComplementAverage`).

    As an inferer, not a network wrapper, the engine keeps the plain network (checkpoints keep their names).

    Args:
        inferer: the inferer the averaged network goes through; :class:`monai.inferers.SimpleInferer` by default.
    """

    def __init__(self, inferer: Inferer | None = None) -> None:
        self.inferer = inferer if inferer is not None else SimpleInferer()

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> Any:
        from medkit.networks import ReverseComplementAverage

        return self.inferer(inputs, ReverseComplementAverage(network), *args, **kwargs)
