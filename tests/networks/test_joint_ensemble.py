"""JointEnsemble and build_ensemble: members side by side in training, their mean probability in eval mode."""

from __future__ import annotations

import pytest
import torch

from medkit.networks import MLP, JointEnsemble, MobileNetV1, build_ensemble, mean_probability_logits


def _mlp() -> MLP:
    return MLP(in_shape=(1, 5, 7), out_channels=3, hidden_channels=(6,))


def test_training_mode_returns_each_members_logits_in_order():
    torch.manual_seed(0)
    net = build_ensemble(_mlp, 2)
    assert isinstance(net, JointEnsemble) and net.num_members == 2
    x = torch.randn(4, 1, 5, 7)
    out = net.train()(x)
    assert out.shape == (4, 6)
    torch.testing.assert_close(out[:, :3], net.members[0](x))
    torch.testing.assert_close(out[:, 3:], net.members[1](x))


def test_eval_mode_returns_the_mean_probability_logits():
    torch.manual_seed(0)
    net = build_ensemble(_mlp, 3).eval()
    x = torch.randn(2, 1, 5, 7)
    with torch.no_grad():
        expected = mean_probability_logits([m(x) for m in net.members])
        out = net(x)
    assert out.shape == (2, 3)
    torch.testing.assert_close(out, expected)
    # the softmax of the output is the members' mean probability
    mean = torch.stack([torch.softmax(m(x), -1) for m in net.members]).mean(0)
    torch.testing.assert_close(torch.softmax(out, -1), mean.detach())


def test_members_start_apart_and_keep_their_keys():
    torch.manual_seed(0)
    net = build_ensemble(lambda: MobileNetV1(1, 1, keep_resolution=2), 2)
    state = net.state_dict()
    assert {k.split(".")[1] for k in state} == {"0", "1"} and all(k.startswith("members.") for k in state)
    first = next(k for k in state if k.endswith("weight"))
    assert not torch.equal(state[first], state[first.replace("members.0.", "members.1.")])
    with torch.no_grad():
        assert net.eval()(torch.zeros(3, 1, 29, 31)).shape == (3, 1)  # odd sizes, binary head


def test_one_member_is_the_plain_network():
    net = build_ensemble(_mlp, 1)
    assert type(net) is MLP


@pytest.mark.parametrize("members", [0, -1, 1.5, True, "2"])
def test_bad_member_counts_are_refused(members):
    with pytest.raises(ValueError, match="members must be a positive integer"):
        build_ensemble(_mlp, members)


def test_joint_ensemble_needs_two_members():
    with pytest.raises(ValueError, match="at least two members"):
        JointEnsemble([_mlp()])
