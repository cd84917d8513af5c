"""A bidirectional LSTM classifier for one-hot DNA sequences.

Reference:
    S. Hochreiter, J. Schmidhuber, "Long Short-Term Memory", Neural Computation 9(8), 1735-1780, 1997.
    M. Schuster, K. K. Paliwal, "Bidirectional Recurrent Neural Networks", IEEE Trans. Signal Processing 45(11), 1997.
    Task and data: ENCODE ChIP-seq peaks vs. dinucleotide-shuffled background, as used by DeepBind
    (B. Alipanahi et al., Nature Biotechnology 33, 831-838, 2015).
"""

from __future__ import annotations

import logging
from typing import Optional

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

__all__ = ["BiLSTMClassifier"]

logger = logging.getLogger(__name__)


class BiLSTMClassifier(nn.Module):
    """One bidirectional LSTM layer, then a tanh MLP on the backward direction's final hidden state.

    The LSTM reads the sequence in both directions; ``h_n[-1]``, the backward direction's final hidden state (the
    summary of the whole sequence read from its last base to its first), feeds an MLP with two hidden layers of
    ``hidden_dim`` units and tanh, then a linear layer to ``out_channels`` raw logits. The sigmoid (or softmax for
    ``out_channels > 1``) belongs in the loss (``BCEWithLogitsLoss``) and in post-processing.

    Padded batches: pass ``lengths`` and the batch is run as a packed sequence, so padding positions never reach the
    LSTM and the logits equal those of each sequence run alone. Without ``lengths`` every position counts.

    Shape contract:
        input ``x``: ``(B, L, in_channels)`` float (batch first; one-hot A, C, G, T with N as all zeros);
        ``lengths`` (optional): ``(B,)`` integers in ``[1, L]``;
        output: ``(B, out_channels)`` raw logits.

    Args:
        in_channels: features per position, 4 for one-hot DNA.
        out_channels: number of logits; 1 for binary classification.
        hidden_dim: LSTM hidden size per direction, also the MLP width.
        dropout: dropout probability before each MLP hidden layer (0 disables it).

    Example:
        >>> net = BiLSTMClassifier(hidden_dim=8)
        >>> net(torch.zeros(3, 101, 4)).shape
        torch.Size([3, 1])
    """

    def __init__(self, in_channels: int = 4, out_channels: int = 1, hidden_dim: int = 64, dropout: float = 0.0) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1 or hidden_dim < 1:
            raise ValueError(
                "in_channels, out_channels and hidden_dim must be >= 1, "
                f"got {in_channels}, {out_channels}, {hidden_dim}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_channels = in_channels
        self.lstm = nn.LSTM(
            input_size=in_channels, hidden_size=hidden_dim, num_layers=1, batch_first=True, bidirectional=True
        )
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, hidden_dim),
            nn.Tanh(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, hidden_dim),
            nn.Tanh(),
            nn.Linear(hidden_dim, out_channels),
        )

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:  # noqa: UP045 (TorchScript)
        if x.dim() != 3 or x.shape[2] != self.in_channels:
            raise ValueError(f"expected input (B, L, {self.in_channels}), got shape {x.shape}")
        # packing costs a sort and a copy: skip it when no sequence in the batch is padded
        if lengths is not None and bool((lengths < x.shape[1]).any()):
            packed = pack_padded_sequence(x, lengths.cpu().long(), batch_first=True, enforce_sorted=False)
            _, (h_n, _) = self.lstm(packed)
        else:
            _, (h_n, _) = self.lstm(x)
        return self.head(h_n[-1])
