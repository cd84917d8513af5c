"""DanQClassifier: shape contract on odd lengths, padding invariance, architecture, TorchScript, bad arguments."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medkit.networks import DanQClassifier, get_network

SMALL = {"conv_channels": 6, "kernel_size": 5, "pool_size": 4, "hidden_dim": 5}


@pytest.mark.parametrize(
    "batch, length, out_channels, pool_size",
    [(1, 1, 1, 4), (3, 101, 1, 4), (2, 7, 3, 4), (4, 13, 1, 5), (2, 3, 2, 8)],
    ids=["one-base", "101bp", "multiclass-odd", "not-a-multiple-of-the-pool", "shorter-than-the-pool"],
)
def test_shape_contract(batch, length, out_channels, pool_size):
    net = DanQClassifier(out_channels=out_channels, **{**SMALL, "pool_size": pool_size})
    assert net(torch.randn(batch, length, 4)).shape == (batch, out_channels)
    lengths = torch.randint(1, length + 1, (batch,))
    assert net(torch.randn(batch, length, 4), lengths).shape == (batch, out_channels)


def test_conv_pool_lstm_head_as_in_danq():
    net = DanQClassifier(conv_channels=32, kernel_size=9, pool_size=3, hidden_dim=12)
    assert (net.conv.in_channels, net.conv.out_channels, net.conv.kernel_size, net.conv.padding) == (4, 32, (9,), (4,))
    assert (net.pool.kernel_size, net.pool.ceil_mode) == (3, True)
    assert (net.lstm.input_size, net.lstm.hidden_size) == (32, 12) and net.lstm.bidirectional
    linears = [m for m in net.head if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(24, 12), (12, 1)]


def test_padding_does_not_change_the_logits():
    torch.manual_seed(0)
    net = DanQClassifier(**SMALL).eval()
    # lengths 9 and 6 end inside a pooling window, 4 fills one, 1 is a single base
    seqs = [torch.randn(n, 4) for n in (9, 4, 6, 1, 3)]
    padded = nn.utils.rnn.pad_sequence(seqs, batch_first=True)
    lengths = torch.tensor([len(s) for s in seqs])
    with torch.no_grad():
        alone = torch.cat([net(s[None]) for s in seqs])
        batched = net(padded, lengths)
        more_padding = net(nn.functional.pad(padded, (0, 0, 0, 7)), lengths)
        unmasked = net(padded)
    torch.testing.assert_close(batched, alone)
    torch.testing.assert_close(more_padding, alone)
    assert not torch.allclose(unmasked[1:], alone[1:])  # without lengths the padding would count


def test_output_uses_both_directions_final_states():
    net = DanQClassifier(**SMALL).eval()
    x = torch.randn(2, 10, 4)
    feats = net.pool(torch.relu(net.conv(x.transpose(1, 2)))).transpose(1, 2)
    assert feats.shape == (2, 3, 6)  # ceil(10 / 4) pooled positions
    _, (h_n, _) = net.lstm(feats)
    torch.testing.assert_close(net(x), net.head(torch.cat([h_n[0], h_n[1]], dim=1)))


def test_registry_and_torchscript():
    net = get_network("danq", **SMALL).eval()
    assert isinstance(net, DanQClassifier)
    scripted = torch.jit.script(net)
    x, lengths = torch.randn(3, 11, 4), torch.tensor([11, 5, 1])
    torch.testing.assert_close(scripted(x, lengths), net(x, lengths))
    torch.testing.assert_close(scripted(x), net(x))


@pytest.mark.parametrize(
    "kwargs",
    [{"kernel_size": 4}, {"kernel_size": 0}, {"pool_size": 0}, {"conv_channels": 0}, {"dropout": 1.0}],
    ids=["even-kernel", "zero-kernel", "zero-pool", "no-filters", "dropout-1"],
)
def test_bad_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        DanQClassifier(**kwargs)


def test_wrong_input_layout_is_rejected():
    with pytest.raises(ValueError, match=r"\(B, L >= 1, 4\)"):
        DanQClassifier(**SMALL)(torch.randn(2, 4, 10))
