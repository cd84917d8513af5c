from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medkit.cli import main
from medkit.commands.show_augmentations import PRESETS, load_retina_sample
from medkit.data.synthetic_retina import generate_retina_dataset


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    return generate_retina_dataset(tmp_path_factory.mktemp("drive"), num_train=2, num_test=1, image_size=64)


def test_load_retina_sample(drive):
    sample = load_retina_sample(drive, index=1)
    assert sample["image"].shape == (3, 64, 64) and sample["label"].shape == (1, 64, 64)
    assert 0.0 <= float(sample["image"].min()) and float(sample["image"].max()) <= 1.0
    assert set(np.unique(sample["label"].numpy())) == {0.0, 1.0}
    assert sample["name"] == "22_training.tif"
    with pytest.raises(ValueError, match="out of range"):
        load_retina_sample(drive, index=2)


def test_cli_writes_a_grid_with_one_row_per_preset(drive, tmp_path, capsys):
    out = tmp_path / "grid.png"
    args = ["show-augmentations", "--dataset-dir", str(drive), "--draws", "2", "--output", str(out)]
    assert main([*args, "--presets", "none", "flips"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    two_rows = Image.open(out).size
    assert main([*args, "--presets", "none", "flips", "rotate", "elastic", "intensity", "all"]) == 0
    six_rows = Image.open(out).size
    assert six_rows[0] == two_rows[0] and six_rows[1] > 2.5 * two_rows[1]


def test_cli_missing_dataset_is_one_line_error(tmp_path, capsys):
    assert (
        main(["show-augmentations", "--dataset-dir", str(tmp_path / "nope"), "--output", str(tmp_path / "g.png")]) == 1
    )
    assert "does not exist" in capsys.readouterr().err


def test_presets_match_the_augmentation_module():
    from medkit.transforms.augmentation import AUGMENTATION_PRESETS

    assert PRESETS == AUGMENTATION_PRESETS
