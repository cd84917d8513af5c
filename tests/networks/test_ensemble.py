import math

import pytest
import torch
from torch import nn

from medkit.networks import (
    FlipTTA,
    MobileNetV1,
    ProbabilityEnsemble,
    find_member_checkpoints,
    mean_probability_logits,
)


class Constant(nn.Module):
    """Returns the same logits for every sample of the batch."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.register_buffer("logits", torch.tensor(logits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(x.shape[0], -1)


def test_binary_members_average_probabilities_not_logits():
    # p = sigmoid(0) = 0.5 and sigmoid(log 3) = 0.75: mean 0.625, logit log(0.625 / 0.375) = log(5 / 3)
    ens = ProbabilityEnsemble([Constant([0.0]), Constant([math.log(3.0)])])
    out = ens(torch.zeros(4, 1, 8, 8))
    assert out.shape == (4, 1)
    torch.testing.assert_close(out, torch.full((4, 1), math.log(5.0 / 3.0)))
    # the mean logit would be log(3) / 2 = 0.549, not log(5/3) = 0.511
    assert not torch.allclose(out, torch.full((4, 1), math.log(3.0) / 2))


def test_multiclass_softmax_of_output_is_the_mean_probability():
    # softmax([0, 0]) = [0.5, 0.5]; softmax([log 3, 0]) = [0.75, 0.25]; mean [0.625, 0.375]
    ens = ProbabilityEnsemble([Constant([0.0, 0.0]), Constant([math.log(3.0), 0.0])])
    out = ens(torch.zeros(3, 1, 8, 8))
    torch.testing.assert_close(out.softmax(-1), torch.tensor([[0.625, 0.375]] * 3))
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(3))  # log-probabilities


def test_certain_members_give_finite_logits():
    ens = ProbabilityEnsemble([Constant([1e4]), Constant([1e4])], eps=1e-6)
    out = ens(torch.zeros(2, 1))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(torch.sigmoid(out), torch.full((2, 1), 1 - 1e-6))


def test_one_member_reproduces_it():
    torch.manual_seed(0)
    net = MobileNetV1(1, 3, keep_resolution=2).eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(ProbabilityEnsemble([net])(x).softmax(-1), net(x).softmax(-1), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("bad", [{"members": []}, {"members": [Constant([0.0])], "eps": 0.0}], ids=["empty", "eps"])
def test_bad_arguments_raise(bad):
    with pytest.raises(ValueError, match="at least one|eps"):
        ProbabilityEnsemble(**bad)


def test_members_with_different_outputs_raise():
    with pytest.raises(ValueError, match="output shape"):
        ProbabilityEnsemble([Constant([0.0]), Constant([0.0, 1.0])])(torch.zeros(2, 1))


def _save_runs(root, seeds, final=False):
    nets = []
    for seed in seeds:
        torch.manual_seed(seed)
        net = MobileNetV1(1, 1, keep_resolution=1)
        (root / f"seed={seed}").mkdir(parents=True)
        state = {"model": net.state_dict(), "optimizer": {}} if final else net.state_dict()
        torch.save(state, root / f"seed={seed}" / ("model_final.pt" if final else "model.pt"))
        nets.append(net.eval())
    return nets


@pytest.mark.parametrize("final", [False, True], ids=["model.pt", "model_final.pt"])
def test_from_checkpoints_matches_the_hand_average(tmp_path, final):
    nets = _save_runs(tmp_path, [3, 7], final=final)
    paths = find_member_checkpoints(tmp_path, "model_final.pt" if final else "model.pt")
    assert [p.split("/")[-2] for p in paths] == ["seed=3", "seed=7"]
    template = MobileNetV1(1, 1, keep_resolution=1)
    before = {k: v.clone() for k, v in template.state_dict().items()}
    ens = ProbabilityEnsemble.from_checkpoints(template, paths)
    assert all(torch.equal(before[k], v) for k, v in template.state_dict().items())  # template left untouched
    assert not ens.training and all(not m.training for m in ens.members)
    x = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        expected = torch.stack([torch.sigmoid(n(x)) for n in nets]).mean(0)
        torch.testing.assert_close(torch.sigmoid(ens(x)), expected, atol=1e-6, rtol=1e-5)


def test_from_checkpoints_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        ProbabilityEnsemble.from_checkpoints(MobileNetV1(1, 1), [tmp_path / "nope.pt"])
    with pytest.raises(ValueError, match="no member checkpoints"):
        ProbabilityEnsemble.from_checkpoints(MobileNetV1(1, 1), [])


def test_from_checkpoints_names_the_checkpoint_of_another_network(tmp_path):
    _save_runs(tmp_path, [0])
    path = tmp_path / "seed=0" / "model.pt"
    with pytest.raises(ValueError, match="seed=0/model.pt does not fit MobileNetV1"):
        ProbabilityEnsemble.from_checkpoints(MobileNetV1(1, 2), [path])


def test_find_member_checkpoints_explains_an_empty_folder(tmp_path):
    (tmp_path / "seed=0").mkdir()
    with pytest.raises(FileNotFoundError, match=r"seed=0,1"):
        find_member_checkpoints(tmp_path)


def test_mean_probability_logits_by_hand():
    # binary: sigmoid(0) = 0.5, sigmoid(log 3) = 0.75 -> mean 0.625 -> logit log(5/3)
    out = mean_probability_logits([torch.zeros(2, 1), torch.full((2, 1), math.log(3.0))])
    torch.testing.assert_close(out, torch.full((2, 1), math.log(5.0 / 3.0)))
    # three classes: softmax([0, 0, 0]) = 1/3 each, softmax([log 4, 0, 0]) = [2/3, 1/6, 1/6] -> mean [1/2, 1/4, 1/4]
    out = mean_probability_logits([torch.zeros(1, 3), torch.tensor([[math.log(4.0), 0.0, 0.0]])])
    torch.testing.assert_close(out, torch.log(torch.tensor([[0.5, 0.25, 0.25]])))
    with pytest.raises(ValueError, match="no views to average"):
        mean_probability_logits([], what="views")


class Corner(nn.Module):
    """Binary logit = the top-left pixel of channel 0 (for 3D input, the first voxel): it sees every flip."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1].flatten(2)[:, :, 0]


def test_flip_tta_averages_the_mirror_image_by_hand():
    # a 1x2x3 image: top-left 0, top-right log 3; the left-right mirror puts log 3 top-left
    x = torch.tensor([[[[0.0, 1.0, math.log(3.0)], [5.0, 6.0, 7.0]]]])
    out = FlipTTA(Corner())(x)  # default: the left-right flip (spatial axis 1)
    torch.testing.assert_close(out, torch.tensor([[math.log(5.0 / 3.0)]]))
    # up-down (axis 0) sees 5; both axes together see 7: mean of sigmoid(0), sigmoid(5), sigmoid(7)
    out = FlipTTA(Corner(), spatial_axes=[0, (0, 1)])(x)
    expected = torch.tensor([0.0, 5.0, 7.0]).sigmoid().mean()
    torch.testing.assert_close(torch.sigmoid(out), expected.reshape(1, 1))


def test_flip_tta_of_a_flip_invariant_network_is_the_network():
    torch.manual_seed(0)
    net = MobileNetV1(1, 3, keep_resolution=2).eval()
    x = torch.randn(2, 1, 28, 28)
    x = (x + x.flip(-1)) / 2  # a left-right symmetric image
    with torch.no_grad():
        torch.testing.assert_close(FlipTTA(net)(x).softmax(-1), net(x).softmax(-1), atol=1e-5, rtol=1e-4)


def test_flip_tta_3d_and_eval_mode():
    x = torch.arange(8.0).reshape(1, 1, 2, 2, 2) / 8
    flip = FlipTTA(Corner(), spatial_axes=[(0, 1, 2)])
    torch.testing.assert_close(torch.sigmoid(flip(x)), torch.tensor([0.0, 7 / 8]).sigmoid().mean().reshape(1, 1))
    flip.eval()
    assert not flip.network.training


def test_flip_tta_takes_a_bare_axis():
    x = torch.tensor([[[[0.0, math.log(3.0)]]]])
    torch.testing.assert_close(FlipTTA(Corner(), spatial_axes=1)(x), torch.tensor([[math.log(5.0 / 3.0)]]))


@pytest.mark.parametrize(
    "axes", [[-1], [()], ["w"], [True], []], ids=["negative", "empty entry", "name", "bool", "no views"]
)
def test_flip_tta_refuses_bad_axes(axes):
    with pytest.raises(ValueError, match="spatial_axes"):
        FlipTTA(Corner(), spatial_axes=axes)


def test_flip_tta_names_an_axis_the_input_lacks():
    with pytest.raises(ValueError, match=r"flip axes \(2,\) do not fit an input with 2 spatial dimensions \(4, 4\)"):
        FlipTTA(Corner(), spatial_axes=[2])(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="eps"):
        FlipTTA(Corner(), eps=0.5)
