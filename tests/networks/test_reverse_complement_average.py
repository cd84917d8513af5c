"""Reverse-complement averaging: the wrapper network, its inferer, and the padded-batch reverse complement."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medkit.inferers import ReverseComplementInferer
from medkit.networks import DanQClassifier, ReverseComplementAverage
from medkit.transforms import OneHotDNA
from medkit.transforms.dna import reverse_complement_batch


class _FirstBaseIsA(nn.Module):
    """Logit = 1 if the first base is A, else 0: a strand-sensitive 'network' whose outputs are known by hand."""

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return x[:, :1, 0]


def test_the_average_of_the_two_strands_by_hand():
    # AACG -> reverse complement CGTT: first base A (1) and C (0) -> 0.5; TTTT -> AAAA: 0 and 1 -> 0.5;
    # the padded third sequence CT (length 2) -> AG: 0 and 1 -> 0.5 only if the reversal stays within its length
    onehot = OneHotDNA()
    x = nn.utils.rnn.pad_sequence([onehot("AACG"), onehot("TTTT"), onehot("CT"), onehot("CGC")], batch_first=True)
    lengths = torch.tensor([4, 4, 2, 3])
    got = ReverseComplementAverage(_FirstBaseIsA())(x, lengths)
    torch.testing.assert_close(got, torch.tensor([[0.5], [0.5], [0.5], [0.0]]))


def test_equals_the_mean_of_the_logits_on_each_strand():
    torch.manual_seed(0)
    net = DanQClassifier(conv_channels=6, kernel_size=5, pool_size=4, hidden_dim=5).eval()
    seqs = ["ACGTTGCA", "GGGAC", "T", "ACGTNACGTA"]
    x = nn.utils.rnn.pad_sequence([OneHotDNA()(s) for s in seqs], batch_first=True)
    lengths = torch.tensor([len(s) for s in seqs])
    with torch.no_grad():
        got = ReverseComplementAverage(net)(x, lengths)
        rc = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"}
        for i, s in enumerate(seqs):
            other = "".join(rc[b] for b in reversed(s))
            by_hand = (net(OneHotDNA()(s)[None]) + net(OneHotDNA()(other)[None])) / 2
            torch.testing.assert_close(got[i : i + 1], by_hand)
        assert not torch.allclose(got, net(x, lengths))  # the other strand changed the scores


def test_the_inferer_averages_and_passes_the_lengths_on():
    onehot = OneHotDNA()
    x = nn.utils.rnn.pad_sequence([onehot("ACG"), onehot("T")], batch_first=True)
    # ACG / CGT -> 0.5; T, padded to TA.. only if the inferer ignores the lengths, reverses to A -> (0 + 1) / 2
    torch.testing.assert_close(
        ReverseComplementInferer()(x, _FirstBaseIsA(), torch.tensor([3, 1])), torch.tensor([[0.5], [0.5]])
    )
    torch.testing.assert_close(ReverseComplementInferer()(x, _FirstBaseIsA()), torch.tensor([[0.5], [0.0]]))


def test_reverse_complement_batch_keeps_the_padding_at_the_end():
    onehot = OneHotDNA()
    x = nn.utils.rnn.pad_sequence([onehot("AACGT"), onehot("GAN")], batch_first=True)
    got = reverse_complement_batch(x, torch.tensor([5, 3]))
    expected = nn.utils.rnn.pad_sequence([onehot("ACGTT"), onehot("NTC")], batch_first=True)
    assert torch.equal(got, expected)
    assert torch.equal(reverse_complement_batch(x[:1]), onehot("ACGTT")[None])  # no lengths: the whole row


def test_reverse_complement_batch_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(B, L, 4\)"):
        reverse_complement_batch(torch.zeros(2, 4, 5))
    with pytest.raises(ValueError, match="lengths"):
        reverse_complement_batch(torch.zeros(2, 5, 4), torch.tensor([5]))
