from __future__ import annotations

import pytest
from conftest import REPO_ROOT
from monai.data import set_track_meta

from medkit.bench import bundle_parser, seconds_per_bundle_iteration
from medkit.data.synthetic_nuclei import generate_nuclei_dataset

TRAIN = REPO_ROOT / "bundles" / "nuclei_seg" / "configs" / "train.json"
TINY = {"spatial_size": [32, 32], "channels": [4, 8], "batch_size": 2}


@pytest.fixture
def _restore_meta_tracking():
    yield
    set_track_meta(True)  # the bundle's initialize turns it off for training


def test_parser_points_the_bundle_at_the_given_data(tmp_path):
    parser = bundle_parser(TRAIN, tmp_path / "d", tmp_path / "o", {"epochs": 3})
    assert parser.get_parsed_content("dataset_dir") == str(tmp_path / "d")
    assert parser.get_parsed_content("default_dataset_dir") == str(tmp_path / "d")
    assert parser.get_parsed_content("output_dir") == str(tmp_path / "o")
    assert parser.get_parsed_content("epochs") == 3


def test_times_the_bundle_trainer(tmp_path, _restore_meta_tracking):
    data = generate_nuclei_dataset(tmp_path / "data", num_images=6, image_size=32, seed=0)
    seconds = seconds_per_bundle_iteration(TRAIN, data, tmp_path / "out", iterations=4, warmup=1, overrides=TINY)
    assert seconds > 0
    with pytest.raises(ValueError, match="warmup=4, iterations=4"):
        seconds_per_bundle_iteration(TRAIN, data, tmp_path / "out", iterations=4, warmup=4, overrides=TINY)
