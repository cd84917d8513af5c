"""MemberLoss: each member of a jointly trained ensemble scored on its own channels, by hand."""

from __future__ import annotations

import math

import pytest
import torch

from medkit.losses import MemberLoss


def test_binary_members_mean_of_their_own_bce():
    loss = MemberLoss(torch.nn.BCEWithLogitsLoss(), members=2, channels=1)
    pred = torch.tensor([[0.0, 2.0], [0.0, 2.0]])  # member 0 at logit 0, member 1 at logit 2
    target = torch.tensor([[1.0], [0.0]])
    # member 0: ln 2 for both images; member 1: ln(1 + e^-2) for label 1, ln(1 + e^2) for label 0
    member0 = math.log(2)
    member1 = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(2))) / 2
    assert float(loss(pred, target)) == pytest.approx((member0 + member1) / 2, abs=1e-6)


def test_multi_class_members_split_by_channel_blocks():
    loss = MemberLoss(torch.nn.CrossEntropyLoss(), members=2, channels=3)
    pred = torch.tensor([[0.0, 0.0, 0.0, 5.0, 0.0, 0.0]])  # member 0 uniform, member 1 sure of class 0
    target = torch.tensor([0])
    member0 = math.log(3)
    member1 = -math.log(math.exp(5) / (math.exp(5) + 2))
    assert float(loss(pred, target)) == pytest.approx((member0 + member1) / 2, abs=1e-6)


def test_one_output_is_scored_unchanged():
    """The ensemble in eval mode (mean probability logits, C channels) gets the plain loss: validation's val_loss."""
    loss = MemberLoss(torch.nn.BCEWithLogitsLoss(), members=3, channels=1)
    pred, target = torch.tensor([[0.5], [-1.0]]), torch.tensor([[1.0], [0.0]])
    assert float(loss(pred, target)) == pytest.approx(float(torch.nn.BCEWithLogitsLoss()(pred, target)), abs=1e-7)


def test_each_member_gets_only_its_own_gradient():
    loss = MemberLoss(torch.nn.CrossEntropyLoss(), members=2, channels=2)
    pred = torch.tensor([[0.3, -0.2, 1.0, 0.1], [0.0, 0.4, -0.5, 0.2]], requires_grad=True)
    target = torch.tensor([1, 0])
    loss(pred, target).backward()
    for k in range(2):
        part = pred.detach()[:, 2 * k : 2 * k + 2].clone().requires_grad_(True)
        (torch.nn.CrossEntropyLoss()(part, target) / 2).backward()
        torch.testing.assert_close(pred.grad[:, 2 * k : 2 * k + 2], part.grad)


def test_wrong_width_and_bad_sizes_are_refused():
    loss = MemberLoss(torch.nn.BCEWithLogitsLoss(), members=2, channels=1)
    with pytest.raises(ValueError, match=r"prediction has 3 channels; expected 1 \(one output\) or 2 members x 1 = 2"):
        loss(torch.zeros(4, 3), torch.zeros(4, 1))
    with pytest.raises(ValueError, match="members and channels must be >= 1"):
        MemberLoss(torch.nn.BCEWithLogitsLoss(), members=0, channels=1)
