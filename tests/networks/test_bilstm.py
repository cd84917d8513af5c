"""BiLSTMClassifier: shape contract, padding invariance, loss equivalence, registry and TorchScript."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medkit.networks import BiLSTMClassifier, get_network


@pytest.mark.parametrize(
    "batch, length, out_channels, hidden",
    [(1, 1, 1, 3), (3, 101, 1, 8), (5, 37, 3, 16), (2, 7, 2, 5)],
    ids=["one-base", "101bp", "multiclass", "odd"],
)
def test_shape_contract(batch, length, out_channels, hidden):
    net = BiLSTMClassifier(out_channels=out_channels, hidden_dim=hidden)
    assert net(torch.randn(batch, length, 4)).shape == (batch, out_channels)
    lengths = torch.randint(1, length + 1, (batch,))
    assert net(torch.randn(batch, length, 4), lengths).shape == (batch, out_channels)


def test_architecture_follows_the_issue():
    net = BiLSTMClassifier(hidden_dim=12)
    lstm = net.lstm
    assert (lstm.input_size, lstm.hidden_size, lstm.num_layers) == (4, 12, 1)
    assert lstm.batch_first and lstm.bidirectional
    linears = [m for m in net.head if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(12, 12), (12, 12), (12, 1)]
    assert sum(isinstance(m, nn.Tanh) for m in net.head) == 2


def test_padding_does_not_change_the_logits():
    net = BiLSTMClassifier(hidden_dim=8).eval()
    seqs = [torch.randn(n, 4) for n in (9, 4, 6, 1)]
    padded = nn.utils.rnn.pad_sequence(seqs, batch_first=True)
    lengths = torch.tensor([len(s) for s in seqs])
    with torch.no_grad():
        batched = net(padded, lengths)
        alone = torch.cat([net(s[None]) for s in seqs])
        more_padding = net(nn.functional.pad(padded, (0, 0, 0, 5)), lengths)
        unmasked = net(padded)
    torch.testing.assert_close(batched, alone)
    torch.testing.assert_close(more_padding, alone)
    assert not torch.allclose(unmasked[1:], alone[1:])  # without lengths the padding would count


def test_output_uses_the_backward_direction_final_state():
    net = BiLSTMClassifier(hidden_dim=6).eval()
    x = torch.randn(2, 10, 4)
    _, (h_n, _) = net.lstm(x)
    torch.testing.assert_close(net(x), net.head(h_n[1]))


def test_registry_and_torchscript():
    net = get_network("bilstm", hidden_dim=4).eval()
    assert isinstance(net, BiLSTMClassifier)
    scripted = torch.jit.script(net)
    x, lengths = torch.randn(3, 8, 4), torch.tensor([8, 3, 5])
    torch.testing.assert_close(scripted(x, lengths), net(x, lengths))
    torch.testing.assert_close(scripted(x), net(x))


@pytest.mark.parametrize("kwargs", [{"hidden_dim": 0}, {"out_channels": 0}, {"dropout": 1.0}], ids=str)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        BiLSTMClassifier(**kwargs)


def test_wrong_input_shape_raises():
    with pytest.raises(ValueError, match=r"expected input \(B, L, 4\)"):
        BiLSTMClassifier(hidden_dim=4)(torch.randn(2, 4, 10))
