"""medkit.bundle.trained_setting: what evaluation and inference configs read from the run_settings.json beside the
weights."""

from __future__ import annotations

import json

import pytest

from medkit.bundle import UserError, trained_setting


def test_reads_the_setting_beside_the_weights(tmp_path):
    (tmp_path / "run_settings.json").write_text(json.dumps({"network": "mUnet", "channels": [4, 8]}))
    weights = tmp_path / "model.pt"
    assert trained_setting(weights, "network", "UNet") == "mUnet"
    assert trained_setting(str(weights), "channels", None) == [4, 8]


def test_a_list_of_ensemble_members_reads_the_first(tmp_path):
    for name, members in (("seed=0", 2), ("seed=1", 3)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run_settings.json").write_text(json.dumps({"members": members}))
    paths = [str(tmp_path / "seed=0" / "model.pt"), str(tmp_path / "seed=1" / "model.pt")]
    assert trained_setting(paths, "members", 1) == 2
    with pytest.raises(UserError, match="checkpoint list is empty"):
        trained_setting([], "members", 1)


def test_default_without_the_file_or_the_key(tmp_path):
    assert trained_setting(tmp_path / "model.pt", "network", "UNet") == "UNet"  # no run_settings.json
    (tmp_path / "run_settings.json").write_text(json.dumps({"loss": "dice"}))  # a run saved before the key existed
    assert trained_setting(tmp_path / "model.pt", "network", "UNet") == "UNet"


@pytest.mark.parametrize(
    "text, match",
    [("{not json", "not valid JSON"), ('["mUnet"]', "expected a JSON object of run settings, got list")],
    ids=["broken", "not-an-object"],
)
def test_bad_file_is_named(tmp_path, text, match):
    (tmp_path / "run_settings.json").write_text(text)
    with pytest.raises(UserError, match=match) as info:
        trained_setting(tmp_path / "model.pt", "network", "UNet")
    assert str(tmp_path / "run_settings.json") in str(info.value)
