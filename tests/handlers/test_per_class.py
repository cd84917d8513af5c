"""PerClassMetrics on MONAI's per-class Dice and IoU for hand-computed one-hot examples."""

from __future__ import annotations

import math

import pytest
import torch
from ignite.engine import Engine
from monai.handlers import MeanDice, MeanIoUHandler, from_engine

from medkit.handlers import PerClassMetrics, per_class_scores

CLASSES = ["background", "Big Circle", "square"]


def _onehot(labels: list[list[int]]) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(labels), 3).permute(2, 0, 1).float()


# One image, 2x3 pixels. Ground truth and prediction as class indices:
#   gt   = [[0, 1, 1], [0, 0, 0]]    pred = [[0, 1, 0], [2, 0, 0]]
# background: gt 4 px, pred 4 px, overlap 3 -> Dice 6/8 = .75, IoU 3/5 = .6
# Big Circle: gt 2 px, pred 1 px, overlap 1 -> Dice 2/3, IoU 1/2
# square:     gt 0 px -> empty ground truth: NaN (ignored) in both
GT = _onehot([[0, 1, 1], [0, 0, 0]])
PRED = _onehot([[0, 1, 0], [2, 0, 0]])


def _run_engine(include_background: bool = True) -> Engine:
    engine = Engine(lambda e, batch: {"pred": [PRED], "label": [GT]})
    kw = {
        "include_background": include_background,
        "reduction": "mean_batch",
        "output_transform": from_engine(["pred", "label"]),
    }
    MeanDice(**kw).attach(engine, "val_dice")
    MeanIoUHandler(**kw).attach(engine, "val_iou")
    PerClassMetrics(CLASSES, ["val_dice", "val_iou"]).attach(engine)
    engine.run([0], max_epochs=1)
    return engine


def test_hand_computed_per_class_dice_and_iou():
    m = _run_engine().state.metrics
    assert m["val_dice_background"] == pytest.approx(0.75)
    assert m["val_dice_big_circle"] == pytest.approx(2 / 3)
    assert math.isnan(m["val_dice_square"])
    assert m["val_iou_background"] == pytest.approx(0.6)
    assert m["val_iou_big_circle"] == pytest.approx(0.5)
    assert m["val_dice_mean"] == pytest.approx((0.75 + 2 / 3) / 2)  # NaN class skipped
    assert m["val_dice_mean_fg"] == pytest.approx(2 / 3)
    assert "val_dice" not in m and "val_iou" not in m  # tensors replaced by scalars


def test_nested_report_keeps_the_class_names():
    report = _run_engine().state.per_class_metrics
    assert list(report["val_dice"]) == CLASSES
    assert report["val_iou"]["Big Circle"] == pytest.approx(0.5)


def test_background_excluded_vectors_are_named_from_the_first_class():
    m = _run_engine(include_background=False).state.metrics
    assert "val_dice_background" not in m and "val_dice_mean_fg" not in m
    assert m["val_dice_big_circle"] == pytest.approx(2 / 3)


def test_per_class_scores_rejects_wrong_length():
    assert per_class_scores(torch.tensor([0.5, 0.25]), CLASSES) == {"Big Circle": 0.5, "square": 0.25}
    with pytest.raises(ValueError, match="expected 3 per-class values"):
        per_class_scores([0.1, 0.2, 0.3, 0.4], CLASSES)


def test_without_details_monai_reports_zero_for_an_absent_class():
    engine = Engine(lambda e, batch: {"pred": [PRED], "label": [GT]})
    MeanDice(reduction="mean_batch", save_details=False, output_transform=from_engine(["pred", "label"])).attach(
        engine, "val_dice"
    )
    PerClassMetrics(CLASSES, "val_dice").attach(engine)
    engine.run([0], max_epochs=1)
    assert engine.state.metrics["val_dice_square"] == 0.0
    assert engine.state.metrics["val_dice_big_circle"] == pytest.approx(2 / 3)


# Two images, 2x2 pixels, three classes (moved from the former medkit.metrics.PerClassDice tests):
# image 0: GT [[0,1],[1,2]], pred [[0,1],[2,2]] -> background 1, class 1: 2*1/(2+1), class 2: 2*1/(1+2)
# image 1: GT all background, pred [[0,1],[0,0]] -> background 2*3/(4+3); classes 1 and 2 absent from GT: NaN
def _onehot_batch(indices: list[list[list[int]]]) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(indices), 3).permute(0, 3, 1, 2).float()


GT2 = _onehot_batch([[[0, 1], [1, 2]], [[0, 0], [0, 0]]])
PRED2 = _onehot_batch([[[0, 1], [2, 2]], [[0, 1], [0, 0]]])
TOOLS = ["background", "shaft", "clasper"]


def _run_dice(batches: list[tuple[torch.Tensor, torch.Tensor]], names: list[str] = TOOLS) -> dict:
    engine = Engine(lambda e, b: {"pred": list(b[0]), "label": list(b[1])})
    MeanDice(reduction="mean_batch", output_transform=from_engine(["pred", "label"])).attach(engine, "val_dice")
    PerClassMetrics(names, "val_dice").attach(engine)
    engine.run(batches, max_epochs=1)
    return engine.state.metrics


def test_per_class_dice_averages_over_images_whatever_the_batching():
    for batches in ([(PRED2, GT2)], [(PRED2[:1], GT2[:1]), (PRED2[1:], GT2[1:])]):
        m = _run_dice(batches)
        assert m["val_dice_background"] == pytest.approx((1 + 6 / 7) / 2)
        assert m["val_dice_shaft"] == pytest.approx(2 / 3) and m["val_dice_clasper"] == pytest.approx(2 / 3)
        assert m["val_dice_mean_fg"] == pytest.approx(2 / 3)
        assert m["val_dice_mean"] == pytest.approx(((1 + 6 / 7) / 2 + 4 / 3) / 3)


def test_class_never_present_is_nan_and_left_out_of_means():
    m = _run_dice([(PRED2[1:], GT2[1:])])
    assert math.isnan(m["val_dice_shaft"]) and math.isnan(m["val_dice_clasper"])
    assert math.isnan(m["val_dice_mean_fg"])
    assert m["val_dice_mean"] == pytest.approx(6 / 7)


def test_wrong_class_count_names_the_classes():
    with pytest.raises(ValueError, match="expected 2 per-class values"):
        _run_dice([(PRED2, GT2)], names=["background", "shaft"])
