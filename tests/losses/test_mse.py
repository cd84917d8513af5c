"""SoftmaxMSELoss on hand-computed values."""

from __future__ import annotations

import pytest
import torch

from medkit.losses import SoftmaxMSELoss

# One sample, 2 classes, 1x2 pixels. Pixel A has logits (0, 0) -> p = (.5, .5); pixel B has (100, -100) -> p = (1, 0).
LOGITS = torch.tensor([[[[0.0, 100.0]], [[0.0, -100.0]]]])
LABELS = torch.tensor([[[[1.0, 0.0]]]])  # A is class 1, B is class 0


def test_hand_computed_mean():
    # class 0: p = [.5, 1], g = [0, 1] -> .25, 0; class 1: p = [.5, 0], g = [1, 0] -> .25, 0; mean of 4 = .125
    assert SoftmaxMSELoss()(LOGITS, LABELS).item() == pytest.approx(0.125, abs=1e-6)


def test_equals_torch_mse_on_softmax_and_one_hot():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5, 7)
    y = torch.randint(0, 4, (3, 1, 5, 7))
    ref = torch.nn.functional.mse_loss(
        torch.softmax(x, 1), torch.nn.functional.one_hot(y[:, 0], 4).permute(0, 3, 1, 2).float()
    )
    assert SoftmaxMSELoss()(x, y).item() == pytest.approx(ref.item(), abs=1e-6)


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({"include_background": False}, 0.125),  # class 1 only: (.25 + 0) / 2
        ({"reduction": "sum"}, 0.5),
        ({"softmax": False, "to_onehot_y": False}, None),
    ],
    ids=["no-background", "sum", "probabilities-in"],
)
def test_options(kwargs, expected):
    if expected is None:  # already probabilities and one-hot: the same 0.125
        probs = torch.tensor([[[[0.5, 1.0]], [[0.5, 0.0]]]])
        onehot = torch.tensor([[[[0.0, 1.0]], [[1.0, 0.0]]]])
        assert SoftmaxMSELoss(**kwargs)(probs, onehot).item() == pytest.approx(0.125)
    else:
        assert SoftmaxMSELoss(**kwargs)(LOGITS, LABELS).item() == pytest.approx(expected, abs=1e-6)


def test_reduction_none_keeps_the_input_shape():
    assert SoftmaxMSELoss(reduction="none")(LOGITS, LABELS).shape == LOGITS.shape


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="does not match input shape"):
        SoftmaxMSELoss(to_onehot_y=False)(LOGITS, LABELS)
