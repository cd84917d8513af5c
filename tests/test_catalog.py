"""medkit.catalog and ``medkit bundles``: every bundle listed from its metadata.json, numbers only where measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from medkit.catalog import NOT_MEASURED, bundle_catalog, measured_metrics
from medkit.cli import main

METADATA = sorted(REPO_ROOT.glob("bundles/*/configs/metadata.json"))


def _rows(text: str) -> dict[str, list[str]]:
    """The aligned Markdown table ``medkit bundles`` prints, as ``{bundle: cells}``."""
    lines = text.splitlines()
    assert set(lines[1]) <= {"|", "-"}, lines[1]
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    assert cells[0] == ["bundle", "version", "task", "inputs", "outputs", "metrics"]
    return {row[0]: row for row in cells[2:]}


def test_every_bundle_is_listed_with_its_task_and_measured_metrics(capsys, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    assert main(["bundles"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert sorted(rows) == sorted(path.parents[1].name for path in METADATA) and len(rows) == 8
    for path in METADATA:
        meta = json.loads(path.read_text())
        row = rows[meta["name"]]
        assert row[1:3] == [meta["version"], meta["task"]]
        numbers = {k: v for k, v in meta["eval_metrics"].items() if isinstance(v, float)}
        for name, value in numbers.items():
            assert f"{name} {value:g}" in row[5], (meta["name"], row[5])
    nuclei = rows["nuclei_seg"]
    assert nuclei[3] == "image: 1×256×256 float32 (magnitude)" and nuclei[4] == "pred: 2×256×256 float32 (segmentation)"
    assert nuclei[5] == "mean_dice 0.903, mean_iou 0.836, dsb2018_map 0.449"


@pytest.mark.parametrize(
    "eval_metrics, expected",
    [
        ({"mean_dice": 0.9, "data": "test split", "command": "python -m ..."}, "mean_dice 0.9"),
        ({"auc": 0.95, "acc": None, "note": "acc pending"}, f"auc 0.95, acc {NOT_MEASURED}"),
        ({"data": "only text"}, NOT_MEASURED),
        ({"verified": True}, NOT_MEASURED),
        (None, NOT_MEASURED),
    ],
    ids=["numbers", "null-is-not-measured", "text-only", "bool-is-not-a-metric", "absent"],
)
def test_measured_metrics(eval_metrics, expected):
    assert measured_metrics(eval_metrics) == expected


def _bundle(root: Path, name: str, meta: dict | str) -> None:
    configs = root / name / "configs"
    configs.mkdir(parents=True)
    (configs / "metadata.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))


def test_a_bundle_without_eval_metrics_reads_not_measured(tmp_path):
    tensor = {"num_channels": 3, "spatial_shape": [32, 48], "dtype": "float32", "format": "RGB"}
    _bundle(tmp_path, "b", {"version": "1.0.0", "task": "t", "network_data_format": {"inputs": {"image": tensor},
            "outputs": {"pred": {"num_channels": 2, "spatial_shape": [32, 48]}}}})  # fmt: skip
    (row,) = bundle_catalog(tmp_path)
    assert row == {
        "bundle": "b",
        "version": "1.0.0",
        "task": "t",
        "inputs": "image: 3×32×48 float32 (RGB)",
        "outputs": "pred: 2×32×48",
        "metrics": NOT_MEASURED,
    }


def test_bad_metadata_names_the_file(tmp_path, capsys):
    _bundle(tmp_path, "broken", "{")
    with pytest.raises(ValueError, match=r"broken/configs/metadata.json is not valid JSON"):
        bundle_catalog(tmp_path)
    _bundle(tmp_path / "other", "partial", {"task": "t"})
    with pytest.raises(ValueError, match=r"partial/configs/metadata.json lacks network_data_format"):
        bundle_catalog(tmp_path / "other")
    assert main(["bundles", "--bundles-root", str(tmp_path / "empty")]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: no bundle in") and "--bundles-root" in line
