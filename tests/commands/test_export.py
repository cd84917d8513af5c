"""``medkit export``: TorchScript and ONNX Runtime outputs match PyTorch for every bundle, at batch sizes 1 and 3."""

from __future__ import annotations

import inspect
import json
import logging
import shutil
import tempfile

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT

import medkit.export
from medkit.cli import main
from medkit.export import network_io
from medkit.interpret.explain import load_bundle_config

BUNDLES = sorted(p.parents[1].name for p in REPO_ROOT.glob("bundles/*/configs/inference.json"))
# overrides that keep each network tiny (a new bundle joins this table); VGG16 has no width setting, so the two VGG
# bundles export the whole 138M-parameter network: about 40 s and 4 GB of memory each
TINY: dict[str, dict] = {
    # danq: torch.export specializes the pooled length, so ONNX keeps no dynamic length yet; conv sizes are read anyway
    "dna_binding": {"network": "bilstm", "hidden_dim": 8, "conv_channels": 8, "kernel_size": 15, "pool_size": 4},
    "endo_instrument_seg": {"channels": [4, 8], "num_classes": 4},
    "fashion_vgg": {"network": "vgg16", "spatial_size": [64, 64], "keep_resolution": 1},
    "medmnist_cls": {"members": 2},  # the default: a two-member JointEnsemble, exported in eval mode
    "nuclei_seg": {"channels": [4, 8]},
    "pcam_transfer": {"hidden_channels": 8},
    "retina_vessel_seg": {"channels": {"unet": [4, 8]}},
    "shapes_seg": {"channels": [4, 8], "network": "UNet", "munet_channels": [4, 8], "munet_depth": 4},
}
SLOW = {"fashion_vgg", "pcam_transfer"}
ATOL = 1e-4


def _random_network(bundle: str, overrides: dict) -> torch.nn.Module:
    """The bundle's network_def with random weights and random BatchNorm statistics (train mode would differ)."""
    network = load_bundle_config(bundle, overrides).get_parsed_content("network_def")
    for module in network.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return network.eval()


def _export_args(bundle: str, run, out, overrides: dict) -> list[str]:
    return ["export", bundle, "--run", str(run), "--output-dir", str(out)] + [
        f"--override={key}={json.dumps(value)}" for key, value in overrides.items()
    ]


@pytest.mark.parametrize(
    "bundle", [pytest.param(b, marks=[pytest.mark.slow] if b in SLOW else [], id=b) for b in BUNDLES]
)
def test_exported_files_match_pytorch(bundle, tmp_path, caplog, monkeypatch):
    ort = pytest.importorskip("onnxruntime")
    scratch = tmp_path / "tmp"  # the temporary-files folder: the export leaves nothing there (the exporter's
    scratch.mkdir()  # <name>.data weights file beside MONAI's temporary file was left behind, 0.5 GB for VGG16)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert bundle in TINY, f"add {bundle} to TINY in {__file__} (overrides that make its network small)"
    network = _random_network(bundle, TINY[bundle])
    (tmp_path / "run").mkdir()
    torch.save(network.state_dict(), tmp_path / "run" / "model.pt")
    out = tmp_path / "models"
    caplog.set_level(logging.INFO, logger="medkit.export")
    try:
        assert main(_export_args(bundle, tmp_path / "run", out, TINY[bundle])) == 0
        assert list(scratch.iterdir()) == []
        ts = torch.jit.load(str(out / "model.ts"))
        session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
        io = network_io(json.loads((REPO_ROOT / "bundles" / bundle / "configs" / "metadata.json").read_text()))
        assert [i.name for i in session.get_inputs()] == [io.input_name]
        assert isinstance(session.get_inputs()[0].shape[0], str), "the ONNX batch axis is not dynamic"
        shapes = [(batch, *io.shape) for batch in (1, 3)]
        if 1 in io.dynamic_axes:  # sequences: any length, through the same file
            shapes.append((2, io.shape[0] // 2, *io.shape[1:]))
        for shape in shapes:
            x = torch.rand(shape)
            with torch.no_grad():
                expected = network(x)
                from_ts = ts(x)
            from_onnx = session.run(None, {io.input_name: x.numpy()})[0]
            assert from_ts.shape == from_onnx.shape == expected.shape
            assert (from_ts - expected).abs().max() <= ATOL, shape
            assert np.abs(from_onnx - expected.numpy()).max() <= ATOL, shape
        warned = [r.getMessage() for r in caplog.records if r.name == "medkit.export" and r.levelno == logging.WARNING]
        if "lengths" in inspect.signature(network.forward).parameters:
            _check_torchscript_keeps_lengths(network, ts, io.shape)
            (line,) = warned  # the command says that ONNX has no lengths
            assert str(out / "model.onnx") in line and "lengths is left out" in line and "unpadded" in line
        else:
            assert warned == []
        logged = [r.getMessage() for r in caplog.records if r.name == "medkit.export" and r.levelno == logging.INFO]
        for name in ("model.ts", "model.onnx"):
            (line,) = [m for m in logged if m.startswith(f"wrote {out / name} (")]
            assert "iB) from" in line and "max abs difference to PyTorch" in line
    finally:
        shutil.rmtree(tmp_path)  # the VGG bundles leave 1.6 GB otherwise


def _check_torchscript_keeps_lengths(network, ts, shape) -> None:
    """Padded batches with lengths: TorchScript keeps the packed path, so each sequence scores as if alone."""
    x, lengths = torch.rand(3, *shape), torch.tensor([shape[0], shape[0] // 2, 7])
    with torch.no_grad():
        packed = ts(x, lengths)
        assert (packed - network(x, lengths)).abs().max() <= ATOL
        alone = network(x[2:, :7])
    assert (packed[2:] - alone).abs().max() <= ATOL


def test_missing_run_checkpoint_is_one_line_naming_the_file(tmp_path, capsys):
    assert main(["export", "nuclei_seg", "--run", str(tmp_path), "--output-dir", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path / "model.pt") in err[0] and "--run" in err[0]
    assert not (tmp_path / "m").exists()


def test_unpublished_bundle_says_how_to_publish(tmp_path, capsys):
    shutil.copytree(REPO_ROOT / "bundles" / "nuclei_seg" / "configs", tmp_path / "nuclei_seg" / "configs")
    assert main(["export", str(tmp_path / "nuclei_seg")]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(tmp_path / "nuclei_seg" / "models" / "model.pt") in line and "medkit bundle publish" in line


def test_weights_of_other_settings_name_the_file_and_the_override(tmp_path, capsys):
    torch.save(_random_network("nuclei_seg", {"channels": [4, 8]}).state_dict(), tmp_path / "model.pt")
    assert main(["export", "nuclei_seg", "--run", str(tmp_path), "--output-dir", str(tmp_path / "m")]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(tmp_path / "model.pt") in line and "--override" in line and "problem(s), first: Missing key" in line


def test_missing_onnx_packages_say_which_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(medkit.export, "_ONNX_PACKAGES", ("onnx", "medkit_no_such_package"))
    torch.save(_random_network("nuclei_seg", {"channels": [4, 8]}).state_dict(), tmp_path / "model.pt")
    argv = _export_args("nuclei_seg", tmp_path, tmp_path / "m", {"channels": [4, 8]})
    assert main(argv) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "medkit_no_such_package" in line and ".[export]" in line and "--format torchscript" in line
    assert main([*argv, "--format", "torchscript"]) == 0
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.ts"]


def test_a_file_beyond_atol_is_not_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(medkit.export, "max_abs_difference", lambda *args, **kwargs: 0.5)
    torch.save(_random_network("nuclei_seg", {"channels": [4, 8]}).state_dict(), tmp_path / "model.pt")
    argv = _export_args("nuclei_seg", tmp_path, tmp_path / "m", {"channels": [4, 8]})
    assert main([*argv, "--format", "torchscript"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(tmp_path / "m" / "model.ts") in line and "by up to 0.5" in line and "--atol" in line
    assert list((tmp_path / "m").iterdir()) == []  # neither the file nor a temporary one
