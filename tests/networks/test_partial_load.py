"""Partial loading of a colorization U-Net (1 -> 3 channels) into a segmentation U-Net (3 -> 4 channels)."""

from __future__ import annotations

import logging

import pytest
import torch

from medkit.networks import UNet, load_matching_state_dict, load_pretrained

DIFFERENT = {"encoders.0.0.weight", "head.weight", "head.bias"}


def _pair() -> tuple[UNet, UNet]:
    torch.manual_seed(1)
    pretrained = UNet(spatial_dims=2, in_channels=1, out_channels=3, channels=(4, 8))
    torch.manual_seed(2)
    target = UNet(spatial_dims=2, in_channels=3, out_channels=4, channels=(4, 8))
    return pretrained, target


def test_loads_matching_tensors_and_reports_the_first_and_last_layers():
    pretrained, target = _pair()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with torch.no_grad():  # make buffers differ too, so copying them is visible
        pretrained.encoders[0][1].running_mean.fill_(0.5)
    state = pretrained.state_dict()
    loaded, skipped = load_matching_state_dict(target, state)
    assert set(skipped) == DIFFERENT
    assert skipped["encoders.0.0.weight"] == "shape (4, 1, 3, 3) in checkpoint vs (4, 3, 3, 3) in model"
    assert skipped["head.weight"] == "shape (3, 4, 1, 1) in checkpoint vs (4, 4, 1, 1) in model"
    assert set(loaded) == set(state) - DIFFERENT
    after = target.state_dict()
    for name in loaded:
        torch.testing.assert_close(after[name], state[name])
    for name in DIFFERENT:
        torch.testing.assert_close(after[name], before[name])
    assert torch.all(after["encoders.0.1.running_mean"] == 0.5)
    assert not torch.equal(after["decoders.0.up.weight"], before["decoders.0.up.weight"])


def test_extra_and_missing_keys_and_module_prefix():
    pretrained, target = _pair()
    state = {f"module.{k}": v for k, v in pretrained.state_dict().items() if not k.startswith("decoders")}
    state["module.extra.weight"] = torch.zeros(2)
    loaded, skipped = load_matching_state_dict(target, state)
    assert skipped["extra.weight"] == "not in model"
    assert skipped["decoders.0.up.weight"] == "not in checkpoint"
    assert "encoders.1.0.weight" in loaded and not any(k.startswith("module.") for k in loaded)


def test_load_pretrained_reads_training_checkpoints_and_logs_skips(tmp_path, caplog):
    pretrained, target = _pair()
    path = tmp_path / "final.pt"
    torch.save({"model": pretrained.state_dict(), "optimizer": {}}, path)
    with caplog.at_level(logging.INFO, logger="medkit.networks.partial_load"):
        load_pretrained(target, path)
    assert f"from {path}" in caplog.text
    assert "skipped head.bias: shape (3,) in checkpoint vs (4,) in model" in caplog.text
    torch.testing.assert_close(target.encoders[1][0].weight, pretrained.encoders[1][0].weight)


def test_load_pretrained_errors(tmp_path):
    _, target = _pair()
    with pytest.raises(FileNotFoundError, match="missing.pt does not exist"):
        load_pretrained(target, tmp_path / "missing.pt")
    torch.save({"other.weight": torch.zeros(1)}, tmp_path / "unrelated.pt")
    with pytest.raises(ValueError, match="no tensor matches"):
        load_pretrained(target, tmp_path / "unrelated.pt")


def test_exclude_vars_and_mapping():
    pretrained, target = _pair()
    state = pretrained.state_dict()
    before = target.encoders[1][0].weight.detach().clone()
    pattern = r"^encoders\.1\.0\."
    loaded, skipped = load_matching_state_dict(target, state, exclude_vars=pattern)
    assert "encoders.1.0.weight" not in loaded
    assert skipped["encoders.1.0.weight"] == f"excluded by exclude_vars {pattern!r}"
    torch.testing.assert_close(target.encoders[1][0].weight, before)

    renamed = {("old." + k if k == "decoders.0.up.weight" else k): v for k, v in state.items()}
    loaded, skipped = load_matching_state_dict(
        target, renamed, mapping={"old.decoders.0.up.weight": "decoders.0.up.weight"}
    )
    assert "decoders.0.up.weight" in loaded and "old.decoders.0.up.weight" not in skipped
    assert "decoders.0.up.weight" not in skipped
    torch.testing.assert_close(target.decoders[0].up.weight, state["decoders.0.up.weight"])
