"""Reverse-complement averaging: a DNA classifier scores a sequence and its other strand, and the logits are averaged.

A protein binds double-stranded DNA, so a sequence and its reverse complement carry the same label. Averaging the
two predictions removes the strand the data happened to be written on (as in DeepBind, Alipanahi et al. 2015, and
DanQ, Quang & Xie 2016, which average the forward and reverse-complement outputs).
"""

from __future__ import annotations

import logging
from typing import Optional

import torch
from torch import nn

from medkit.transforms.dna import reverse_complement_batch

__all__ = ["ReverseComplementAverage"]

logger = logging.getLogger(__name__)


class ReverseComplementAverage(nn.Module):
    """The mean of a DNA classifier's logits on a batch and on its reverse complement.

    Shape contract: as the wrapped network, ``x`` ``(B, L, 4)`` one-hot (batch first, zero padding at the end),
    ``lengths`` (optional) ``(B,)``; output ``(B, out_channels)`` raw logits, ``(network(x) + network(rc(x))) / 2``
    with ``rc`` from :func:`medkit.transforms.dna.reverse_complement_batch` (each sequence reversed within its length).

    The wrapper has the network as its ``network`` submodule, so load weights into the network before wrapping it;
    bundles use :class:`medkit.inferers.ReverseComplementInferer`, which wraps at call time and leaves the engine's
    network (and its checkpoint names) alone.

    Args:
        network: a classifier called as ``network(x)`` or ``network(x, lengths)``.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:  # noqa: UP045 (TorchScript)
        rc = reverse_complement_batch(x, lengths)
        if lengths is None:
            return (self.network(x) + self.network(rc)) / 2
        return (self.network(x, lengths) + self.network(rc, lengths)) / 2
