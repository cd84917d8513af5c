"""What every bundle owes MONAI's tools and its users, checked over all bundles at once (cheap: no training)."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest
from conftest import REPO_ROOT, _isolated_bundle_state

from medkit.bundle.errors import UserError
from medkit.bundle.overrides import check_override_keys

BUNDLES = sorted(p.name for p in (REPO_ROOT / "bundles").iterdir() if (p / "configs" / "train.json").is_file())


def test_all_bundles_are_found():
    assert len(BUNDLES) == 8, BUNDLES


@pytest.mark.parametrize("bundle", BUNDLES)
def test_train_json_holds_only_what_is_particular(bundle):
    train = REPO_ROOT / "bundles" / bundle / "configs" / "train.json"
    lines = train.read_text().splitlines()
    assert len(lines) <= 150, f"{train}: {len(lines)} lines"
    text = train.read_text()
    for wiring in ("CheckpointSaver", "CheckpointLoader", "TensorBoardStatsHandler", '"SupervisedTrainer"'):
        assert wiring not in text, f"{train} wires {wiring} itself instead of medkit.bundle"


@pytest.mark.parametrize("bundle", BUNDLES)
def test_bundle_has_licence_and_standalone_inference(bundle):
    root = REPO_ROOT / "bundles" / bundle
    assert (root / "LICENSE").read_text().startswith((REPO_ROOT / "LICENSE").read_text()[:200])
    inference = (root / "configs" / "inference.json").read_text()
    assert '"evaluator"' in inference and '"network_def"' in inference  # InferProperties at the top level
    assert set(re.findall(r"bundles/(\w+)", inference)) == {bundle}  # macros only into its own bundle


@pytest.mark.parametrize("bundle", BUNDLES)
def test_unknown_override_names_the_closest_key(bundle):
    train = REPO_ROOT / "bundles" / bundle / "configs" / "train.json"
    check_override_keys(["epochs", "output_dir", "seed"], [train])
    with pytest.raises(UserError, match=r"unknown override --epoch: did you mean --epochs"):
        check_override_keys(["epochs", "epoch"], [train])


@pytest.mark.parametrize("bundle", BUNDLES)
def test_loading_a_config_changes_nothing_until_run(bundle, tmp_path):
    """``ConfigWorkflow.initialize()`` (what ``monai.bundle.load`` and pipelines call) writes no file and keeps
    MetaTensor tracking and the RNG as they were."""
    import torch
    from monai.bundle import ConfigWorkflow
    from monai.data import get_track_meta

    os.chdir(REPO_ROOT)
    out = tmp_path / "run"
    for config, kind in (("train.json", "train"), ("inference.json", "inference")):
        with _isolated_bundle_state(io.StringIO()):
            state = torch.get_rng_state()
            workflow = ConfigWorkflow(
                config_file=str(REPO_ROOT / "bundles" / bundle / "configs" / config),
                workflow_type=kind,
                logging_file=False,
                output_dir=str(out),
            )
            workflow.initialize()
            assert get_track_meta() is True
            assert torch.equal(torch.get_rng_state(), state)
    assert not out.exists()
    assert not Path(REPO_ROOT / "run_settings.json").exists()


@pytest.mark.parametrize("bundle", BUNDLES)
def test_metadata_verifies_against_the_shipped_schema(bundle):
    from conftest import run_bundle_in_process

    proc = run_bundle_in_process(
        "verify_metadata",
        "--meta_file",
        str(REPO_ROOT / "bundles" / bundle / "configs" / "metadata.json"),
        "--filepath",
        str(REPO_ROOT / "bundles" / "meta_schema.json"),
    )
    assert "metadata is verified with no error" in proc.stdout + proc.stderr


# overrides verify_net_in_out needs: endo reads num_classes from a trained run's mapping.json, shapes_seg its network
# from a trained run's run_settings.json (dna_binding its network and sizes, fashion_vgg its network and input
# size); pcam's head kept small
VERIFY_NET_OVERRIDES = {
    "dna_binding": [
        "--network",
        "danq",
        "--hidden_dim",
        "64",
        "--conv_channels",
        "128",
        "--kernel_size",
        "15",
        "--pool_size",
        "4",
    ],
    "endo_instrument_seg": ["--num_classes", "4"],
    "medmnist_cls": ["--members", "2"],
    "fashion_vgg": ["--network", "vgg16", "--spatial_size", "[64, 64]", "--keep_resolution", "1"],
    "pcam_transfer": ["--hidden_channels", "8"],
    "shapes_seg": [
        "--network",
        "UNet",
        "--channels",
        "[8,16,32,64]",
        "--munet_channels",
        "[64,128]",
        "--munet_depth",
        "16",
    ],
}


@pytest.mark.parametrize("bundle", BUNDLES)
def test_verify_net_in_out(bundle):
    """MONAI's shape check of ``network_def`` against the metadata's ``network_data_format``, on inference.json.

    dna_binding's metadata gives the network's ``(B, L, 4)`` input in MONAI's ``(1, num_channels, *spatial_shape)``
    order: 101 "channels" (positions) and a spatial shape of [4] (bases)."""
    from conftest import run_bundle_in_process

    configs = REPO_ROOT / "bundles" / bundle / "configs"
    proc = run_bundle_in_process(
        "verify_net_in_out",
        "network_def",
        "--meta_file",
        str(configs / "metadata.json"),
        "--config_file",
        str(configs / "inference.json"),
        *VERIFY_NET_OVERRIDES.get(bundle, []),
    )
    assert "data shape of network is verified with no error" in proc.stdout + proc.stderr


@pytest.mark.parametrize("bundle", BUNDLES)
def test_multi_gpu_layers_override_keys_the_bundle_has(bundle):
    """The torchrun layers replace the device, TensorBoard writer and samplers by medkit.bundle calls; every key they
    set must exist in the configs below them, so a renamed data loader fails here rather than on a cluster."""
    import json

    from monai.bundle import ConfigParser

    configs = REPO_ROOT / "bundles" / bundle / "configs"
    for layer, below in (
        ("multi_gpu_train.json", ["train.json"]),
        ("multi_gpu_evaluate.json", ["train.json", "evaluate.json"]),
    ):
        parser = ConfigParser()
        parser.read_config([str(configs / name) for name in below])
        for key in json.loads((configs / layer).read_text()):
            if key.startswith("_desc") or key.endswith("#sampler"):
                continue
            assert key.lstrip("+") in parser, f"{configs / layer}: {key} is not in {below}"
        parser.read_config([str(configs / name) for name in [*below, layer]])
        assert parser["run"][-1] == "$medkit.bundle.end_distributed()"
        assert parser["validate#dataloader#sampler"].startswith("$medkit.bundle.distributed_sampler(@validate#dataset")
        if layer == "multi_gpu_train.json":
            assert parser["train#dataloader#shuffle"] is False
