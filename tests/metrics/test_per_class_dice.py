"""Per-class Dice on hand-computed one-hot examples, with and without background."""

from __future__ import annotations

import math

import pytest
import torch
from ignite.engine import Engine

from medkit.metrics import PerClassDice, per_class_dice, stack_outputs


def _onehot(indices: list[list[list[int]]], num_classes: int = 3) -> torch.Tensor:
    t = torch.tensor(indices)
    return torch.nn.functional.one_hot(t, num_classes).permute(0, 3, 1, 2).float()


# image 0: GT [[0,1],[1,2]], pred [[0,1],[2,2]] -> background 1, class 1: 2*1/(2+1), class 2: 2*1/(1+2)
# image 1: GT all background, pred [[0,1],[0,0]] -> background 2*3/(4+3); classes 1 and 2 absent from GT: NaN
GT = _onehot([[[0, 1], [1, 2]], [[0, 0], [0, 0]]])
PRED = _onehot([[[0, 1], [2, 2]], [[0, 1], [0, 0]]])
NAN = float("nan")


@pytest.mark.parametrize(
    "include_background, expected",
    [
        (True, [[1.0, 2 / 3, 2 / 3], [6 / 7, NAN, NAN]]),
        (False, [[2 / 3, 2 / 3], [NAN, NAN]]),
    ],
    ids=["with_background", "without_background"],
)
def test_per_class_dice_hand_computed(include_background, expected):
    got = per_class_dice(PRED, GT, include_background=include_background)
    torch.testing.assert_close(got, torch.tensor(expected), equal_nan=True)


def test_per_class_dice_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        per_class_dice(PRED, GT[:, :2])


def _run_metric(batches, names=("background", "shaft", "clasper")) -> dict:
    engine = Engine(lambda e, b: b)
    PerClassDice(names, prefix="val_").attach(engine, "per_class")
    engine.run(batches, max_epochs=1)
    return engine.state.metrics


def test_per_class_metric_averages_over_images_and_names_classes():
    # the two images in two batches must give the same result as in one batch
    for batches in ([(PRED, GT)], [(PRED[:1], GT[:1]), (PRED[1:], GT[1:])]):
        m = _run_metric(batches)
        assert m["val_dice_background"] == pytest.approx((1 + 6 / 7) / 2)
        assert m["val_dice_shaft"] == pytest.approx(2 / 3)
        assert m["val_dice_clasper"] == pytest.approx(2 / 3)
        assert m["val_dice_class_mean"] == pytest.approx(2 / 3)
        assert m["val_dice_class_mean_with_background"] == pytest.approx(((1 + 6 / 7) / 2 + 4 / 3) / 3)
        assert "per_class" not in m  # flattened: only scalars reach the loggers


def test_per_class_metric_class_never_present_is_nan_and_left_out_of_means():
    m = _run_metric([(PRED[1:], GT[1:])])
    assert math.isnan(m["val_dice_shaft"]) and math.isnan(m["val_dice_clasper"])
    assert math.isnan(m["val_dice_class_mean"])
    assert m["val_dice_class_mean_with_background"] == pytest.approx(6 / 7)


def test_per_class_metric_checks_class_count():
    with pytest.raises(ValueError, match="3 channels for 2 classes"):
        _run_metric([(PRED, GT)], names=("background", "shaft"))


def test_stack_outputs_batches_decollated_items():
    items = [{"a": torch.zeros(1, 2), "b": torch.ones(1, 2)}, {"a": torch.ones(1, 2), "b": torch.zeros(1, 2)}]
    a, b = stack_outputs(items, "a", "b")
    assert a.shape == (2, 1, 2) and a[1].sum() == 2 and b[0].sum() == 2
    batch = {"a": torch.zeros(3), "b": torch.ones(3)}
    assert stack_outputs(batch, "b")[0] is batch["b"]
