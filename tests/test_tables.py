"""mean_std_table, format_markdown and markdown_table on hand-computed values."""

from __future__ import annotations

import math

import pytest

from medkit.tables import format_markdown, markdown_table, mean_std_table, write_table

ROWS = [
    {"loss": "dice", "seed": 0, "iou": 0.5},
    {"loss": "mse", "seed": 0, "iou": 0.1},
    {"loss": "dice", "seed": 1, "iou": 0.7},
    {"loss": "mse", "seed": 1, "iou": float("nan")},
    {"loss": "dice", "seed": 2, "iou": 0.6},
]


def test_groups_mean_and_sample_std():
    table = mean_std_table(ROWS, "loss", ["iou"], order=["mse", "dice"])
    assert [t["loss"] for t in table] == ["mse", "dice"]
    mse, dice = table
    assert mse["n"] == 2 and mse["iou"] == pytest.approx(0.1) and mse["iou_std"] == 0.0  # NaN run skipped
    assert dice["iou"] == pytest.approx(0.6)
    assert dice["iou_std"] == pytest.approx(0.1)  # sqrt((0.01 + 0.01 + 0) / 2)


def test_missing_column_gives_nan():
    (entry,) = mean_std_table([{"loss": "a"}], "loss", ["iou"])
    assert math.isnan(entry["iou"])


def test_markdown_cells():
    text = format_markdown(mean_std_table(ROWS, "loss", ["iou"]), "loss", ["iou"], {"iou": "mean IoU"})
    lines = text.splitlines()
    assert lines[0] == "| loss | runs | mean IoU |"
    assert lines[2] == "| dice | 3 | 0.600 ± 0.100 |"


def test_values_read_as_text_are_numbers_and_text_is_an_error():
    rows = [{"loss": "a", "iou": "0.5"}, {"loss": "a", "iou": None}, {"loss": "a", "iou": 0.7}]
    (entry,) = mean_std_table(rows, "loss", ["iou"])
    assert entry["n"] == 3 and entry["iou"] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="column 'iou'.*'bad'"):
        mean_std_table([{"loss": "a", "iou": "bad"}], "loss", ["iou"])
    with pytest.raises(KeyError, match="loss"):
        mean_std_table([{"iou": 0.1}], "loss", ["iou"])


@pytest.mark.parametrize(
    "align, expected",
    [
        (False, ["| name | value |", "|---|---|", "| a\\|b | 1 |", "|  | 0.5 |"]),
        (True, ["| name | value |", "|------|-------|", "| a\\|b | 1     |", "|      | 0.5   |"]),
    ],
    ids=["plain", "aligned"],
)
def test_markdown_table(align, expected):
    # a "|" in a cell is escaped and a line break becomes a space, so no cell splits the table; None is empty
    assert markdown_table(["name", "value"], [["a|b", 1], [None, 0.5]], align=align).splitlines() == expected
    assert markdown_table(["x"], [["two\nlines"]]).splitlines()[2] == "| two lines |"
    with pytest.raises(ValueError, match=r"row \['a'\] has 1 cells for 2 columns"):
        markdown_table(["name", "value"], [["a"]])


def test_write_table_writes_the_markdown_and_the_rows_as_csv(tmp_path):
    table = [{"loss": "dice", "n": 2, "iou": 0.5}, {"loss": "mse", "n": 1, "iou": 0.25}]
    write_table(table, "| md |", tmp_path / "loss_table_test")
    assert (tmp_path / "loss_table_test.md").read_text() == "| md |"
    lines = (tmp_path / "loss_table_test.csv").read_text().splitlines()
    assert lines == ["loss,n,iou", "dice,2,0.5", "mse,1,0.25"]
