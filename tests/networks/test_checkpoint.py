import pytest
import torch
from torch import nn

from medkit.networks import load_checkpoint, read_model_state


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))


@pytest.mark.parametrize("layout", ["state_dict", "training_checkpoint"])
def test_load_checkpoint_reads_both_checkpoint_saver_layouts(tmp_path, layout):
    source = _net(0)
    state = source.state_dict() if layout == "state_dict" else {"model": source.state_dict(), "trainer": {"epoch": 3}}
    torch.save(state, tmp_path / "ckpt.pt")
    target = _net(1)
    assert load_checkpoint(target, tmp_path / "ckpt.pt") is target
    for name, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[name], value), name


def test_read_model_state_takes_the_named_entry(tmp_path):
    torch.save({"model": {"a": torch.ones(1)}, "ema": {"a": torch.zeros(1)}}, tmp_path / "ckpt.pt")
    assert torch.equal(read_model_state(tmp_path / "ckpt.pt", key="ema")["a"], torch.zeros(1))
    assert torch.equal(read_model_state(tmp_path / "ckpt.pt")["a"], torch.ones(1))


def test_load_checkpoint_names_the_missing_or_unfitting_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt does not exist"):
        load_checkpoint(_net(0), tmp_path / "missing.pt")
    torch.save(nn.Linear(2, 2).state_dict(), tmp_path / "linear.pt")
    with pytest.raises(ValueError, match="linear.pt does not fit Sequential"):
        load_checkpoint(_net(0), tmp_path / "linear.pt")
