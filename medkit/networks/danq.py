"""A DanQ-style classifier for one-hot DNA: a convolution front end, then a bidirectional LSTM and a dense head.

Reference:
    D. Quang, X. Xie, "DanQ: a hybrid convolutional and recurrent deep neural network for quantifying the function of
    DNA sequences", Nucleic Acids Research 44(11), e107, 2016.
"""

from __future__ import annotations

import logging
from typing import Optional

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

__all__ = ["DanQClassifier"]

logger = logging.getLogger(__name__)


class DanQClassifier(nn.Module):
    """Conv1d + ReLU + max pooling + dropout (motif scanner), a BiLSTM over the pooled motif map, a dense head.

    As in DanQ, ``conv_channels`` filters of width ``kernel_size`` scan the sequence for motifs, max pooling of width
    ``pool_size`` keeps the strongest hit per window, and a bidirectional LSTM reads the pooled map for the grammar
    between motifs. The final hidden states of both directions (concatenated) feed a dense layer of ``hidden_dim``
    ReLU units and a linear layer to ``out_channels`` raw logits. Sized for 101 bp ChIP-seq windows on a CPU, not
    DanQ's 1,000 bp and 919 outputs.

    Padded batches: the convolution uses zero ("same") padding, which is what batch padding adds (N is all zeros), so
    its outputs at a sequence's own positions do not depend on the batch. With ``lengths``, the convolution outputs
    past each sequence's end are set to zero before pooling (the ReLU outputs are >= 0, so a zero never wins a
    window that holds one real position), the pooling uses ``ceil_mode``, and the LSTM runs packed over the
    ``ceil(length / pool_size)`` pooled positions: the logits equal those of each sequence run alone. Without
    ``lengths`` every position counts.

    Shape contract:
        input ``x``: ``(B, L, in_channels)`` float (batch first; one-hot A, C, G, T with N as all zeros), ``L >= 1``;
        ``lengths`` (optional): ``(B,)`` integers in ``[1, L]``;
        output: ``(B, out_channels)`` raw logits.

    Args:
        in_channels: features per position, 4 for one-hot DNA.
        out_channels: number of logits; 1 for binary classification.
        conv_channels: number of convolution filters (motif detectors).
        kernel_size: filter width in bases; odd, so "same" padding is symmetric.
        pool_size: max-pooling width and stride.
        hidden_dim: LSTM hidden size per direction, also the dense layer's width.
        dropout: dropout after pooling and before the output layer (0 disables it).

    Example:
        >>> net = DanQClassifier(conv_channels=8, hidden_dim=8)
        >>> net(torch.zeros(3, 101, 4)).shape
        torch.Size([3, 1])
    """

    def __init__(
        self,
        in_channels: int = 4,
        out_channels: int = 1,
        conv_channels: int = 128,
        kernel_size: int = 15,
        pool_size: int = 4,
        hidden_dim: int = 64,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        sizes = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "conv_channels": conv_channels,
            "pool_size": pool_size,
            "hidden_dim": hidden_dim,
        }
        bad = {k: v for k, v in sizes.items() if v < 1}
        if bad:
            raise ValueError(f"DanQClassifier sizes must be >= 1, got {bad}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number (symmetric 'same' padding), got {kernel_size}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_channels = in_channels
        self.pool_size = pool_size
        self.conv = nn.Conv1d(in_channels, conv_channels, kernel_size, padding=kernel_size // 2)
        self.pool = nn.MaxPool1d(pool_size, ceil_mode=True)
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            input_size=conv_channels, hidden_size=hidden_dim, num_layers=1, batch_first=True, bidirectional=True
        )
        self.head = nn.Sequential(
            nn.Linear(2 * hidden_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_dim, out_channels)
        )

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:  # noqa: UP045 (TorchScript)
        if x.dim() != 3 or x.shape[2] != self.in_channels or x.shape[1] < 1:
            raise ValueError(f"expected input (B, L >= 1, {self.in_channels}), got shape {x.shape}")
        feats = torch.relu(self.conv(x.transpose(1, 2)))  # (B, C, L)
        padded = lengths is not None and bool((lengths < x.shape[1]).any())
        if lengths is not None and padded:
            positions = torch.arange(x.shape[1], device=x.device)
            feats = feats * (positions[None, :] < lengths.to(x.device)[:, None]).unsqueeze(1).to(feats.dtype)
        feats = self.drop(self.pool(feats)).transpose(1, 2)  # (B, ceil(L / pool), C)
        # packing costs a sort and a copy: skip it when no sequence in the batch is padded
        if lengths is not None and padded:
            pooled = torch.div(lengths.cpu().long() + self.pool_size - 1, self.pool_size, rounding_mode="floor")
            _, (h_n, _) = self.lstm(pack_padded_sequence(feats, pooled, batch_first=True, enforce_sorted=False))
        else:
            _, (h_n, _) = self.lstm(feats)
        return self.head(torch.cat([h_n[0], h_n[1]], dim=1))
