"""Data-parallel training under torchrun on the CPU (gloo): the multi-GPU layers of nuclei_seg and dna_binding, two
"nodes" on 127.0.0.1, resume, the evaluate layer; and the helpers of medkit.bundle.distributed in one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import NUCLEI_CONFIGS as NUCLEI
from conftest import NUCLEI_TINY, REPO_ROOT, bundle_layers, run_bundle_in_process

from medkit.bundle import distributed
from medkit.data.synthetic_dna import generate_dna_dataset
from medkit.data.synthetic_nuclei import generate_nuclei_dataset

DNA = REPO_ROOT / "bundles" / "dna_binding" / "configs"
DNA_TINY = ["--batch_size", "16", "--hidden_dim", "8", "--num_workers", "0"]


def _torchrun(*args: str, launcher: tuple[str, ...] = ("--standalone", "--nproc_per_node=2")) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", *launcher, "-m", "monai.bundle", "run", *args]
    return subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _finish(proc: subprocess.Popen, check: bool = True) -> str:
    out, _ = proc.communicate(timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"torchrun failed ({proc.returncode}):\n{out[-4000:]}")
    return out


def _tensorboard_scalars(run_dir: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [e.value for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _single_process_validation(configs: Path, out: Path, data: Path, tiny: list[str], tmp: Path) -> dict:
    """The train config's validation of ``out/model.pt`` in one process, as JSON (full precision)."""
    layer = tmp / "score_val.json"
    layer.write_text(
        json.dumps(
            {
                "validate#evaluator#load_path": str(out / "model.pt"),
                "validate#evaluator#checkpoint_dir": None,
                "validate#evaluator#summary_writer": None,
                "+validate#handlers": [
                    {"_target_": "medkit.handlers.MetricsJSONWriter", "output_path": str(tmp / "val.json")}
                ],
                "run": [f"$medkit.bundle.start_run('{tmp}', @seed, log_name=None)", "$@validate#evaluator.run()"],
            }
        )
    )
    config = f"[{','.join(repr(str(p)) for p in (configs / 'train.json', layer))}]"
    run_bundle_in_process("run", "--config_file", config, "--dataset_dir", str(data), "--output_dir", str(out), *tiny)
    return json.loads((tmp / "val.json").read_text())


@pytest.fixture(scope="module")
def nuclei_ddp(tmp_path_factory) -> dict[str, Path | str]:
    """nuclei_seg trained 1 epoch on 2 gloo processes (30 images: 3 for validation, split 2 + 1 over the ranks)."""
    root = tmp_path_factory.mktemp("nuclei_ddp")
    data = generate_nuclei_dataset(root / "data", num_images=30, image_size=64, seed=0)
    out = root / "run"
    config = bundle_layers(NUCLEI, "train.json", "multi_gpu_train.json")
    log = _finish(
        _torchrun(
            "--config_file", config, "--dataset_dir", str(data), "--output_dir", str(out), "--epochs", "1", *NUCLEI_TINY
        )
    )
    return {"root": root, "data": data, "out": out, "log": log}


def test_ddp_writes_one_set_of_outputs_from_rank_0(nuclei_ddp):
    out = nuclei_ddp["out"]
    assert sorted(p.name for p in out.glob("*.pt")) == ["checkpoint_epoch=1.pt", "model.pt", "model_final.pt"]
    assert len(list(out.glob("events.out.tfevents.*"))) == 1, "TensorBoard events from rank 0 only"
    log = nuclei_ddp["log"]
    assert "distributed: 2 processes (gloo), this is rank 0 on cpu" in log
    assert "this is rank 1" not in log, "rank 1 logs at WARNING"
    assert log.count("Epoch 1/1:") == 1
    final = torch.load(out / "model_final.pt", weights_only=True)
    assert not any(k.startswith("module.") for k in final["model"]), "checkpoints hold the unwrapped network"
    datalist = json.loads((out / "datalist.json").read_text())
    assert len(datalist["val"]) == 3
    # 21 training images over 2 ranks: 11 each (padded), 5 batches of 2 per rank
    assert final["trainer"]["iteration"] == 5


def test_ddp_validation_equals_one_process_scoring_the_checkpoint(nuclei_ddp, tmp_path):
    ddp_dice = _tensorboard_scalars(nuclei_ddp["out"])["val_mean_dice"][-1]
    single = _single_process_validation(NUCLEI, nuclei_ddp["out"], nuclei_ddp["data"], NUCLEI_TINY, tmp_path)
    assert single["num_images"] == 3
    assert single["metrics"]["val_mean_dice"] == pytest.approx(ddp_dice, abs=1e-6)


def test_ddp_resume_continues_the_run(nuclei_ddp):
    out, data = nuclei_ddp["out"], nuclei_ddp["data"]
    config = bundle_layers(NUCLEI, "train.json", "multi_gpu_train.json")
    log = _finish(
        _torchrun(
            "--config_file",
            config,
            "--dataset_dir",
            str(data),
            "--output_dir",
            str(out),
            "--epochs",
            "2",
            "--resume",
            "true",
            *NUCLEI_TINY,
        )
    )
    assert "Epoch 1/2" not in log and log.count("Epoch 2/2:") == 1
    assert torch.load(out / "model_final.pt", weights_only=True)["trainer"]["iteration"] == 10


def test_ddp_evaluate_gathers_every_test_image(nuclei_ddp, tmp_path):
    out, data = nuclei_ddp["out"], nuclei_ddp["data"]
    args = ["--dataset_dir", str(data), "--output_dir", str(out), *NUCLEI_TINY]
    _finish(
        _torchrun(
            "--config_file", bundle_layers(NUCLEI, "train.json", "evaluate.json", "multi_gpu_evaluate.json"), *args
        )
    )
    ddp = json.loads((out / "eval" / "metrics.json").read_text())
    run_bundle_in_process("run", "--config_file", bundle_layers(NUCLEI, "train.json", "evaluate.json"), *args)
    single = json.loads((out / "eval" / "metrics.json").read_text())
    assert ddp["num_images"] == single["num_images"] == 6
    for name, value in single["metrics"].items():
        assert ddp["metrics"][name] == pytest.approx(value, abs=1e-6), name
    assert sorted(r["image"] for r in ddp["per_image"]) == sorted(r["image"] for r in single["per_image"])


def test_torchrun_without_the_layer_stops_with_the_fix(nuclei_ddp, tmp_path):
    out = _finish(
        _torchrun(
            "--config_file",
            str(NUCLEI / "train.json"),
            "--dataset_dir",
            str(nuclei_ddp["data"]),
            "--output_dir",
            str(tmp_path / "run"),
            "--epochs",
            "1",
            *NUCLEI_TINY,
        ),
        check=False,
    )
    assert "add the bundle's configs/multi_gpu_train.json" in out


def test_dna_ddp_validation_equals_one_process(tmp_path):
    data = generate_dna_dataset(tmp_path / "data", num_sequences=130, length=41, seed=0)  # 11 for validation: 6 + 5
    out = tmp_path / "run"
    config = bundle_layers(DNA, "train.json", "multi_gpu_train.json")
    _finish(
        _torchrun(
            "--config_file", config, "--dataset_dir", str(data), "--output_dir", str(out), "--epochs", "1", *DNA_TINY
        )
    )
    assert sorted(p.name for p in out.glob("*.pt")) == ["checkpoint_epoch=1.pt", "model.pt", "model_final.pt"]
    assert len(list(out.glob("events.out.tfevents.*"))) == 1
    ddp = _tensorboard_scalars(out)
    single = _single_process_validation(DNA, out, data, DNA_TINY, tmp_path)
    for name in ("val_roc_auc", "val_loss", "val_accuracy"):
        assert single["metrics"][name] == pytest.approx(ddp[name][-1], abs=1e-6), name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_on_one_machine_train_nuclei(nuclei_ddp, tmp_path):
    endpoint = f"127.0.0.1:{_free_port()}"
    config = bundle_layers(NUCLEI, "train.json", "multi_gpu_train.json")
    out = tmp_path / "run"
    args = [
        "--config_file",
        config,
        "--dataset_dir",
        str(nuclei_ddp["data"]),
        "--output_dir",
        str(out),
        "--epochs",
        "1",
        *NUCLEI_TINY,
    ]
    nodes = [
        _torchrun(
            *args,
            launcher=(
                "--nnodes=2",
                f"--node_rank={rank}",
                "--nproc_per_node=1",
                "--rdzv-backend=c10d",
                f"--rdzv-endpoint={endpoint}",
                "--rdzv-id=medkit-test",
            ),
        )
        for rank in (0, 1)
    ]
    logs = [_finish(node) for node in nodes]
    assert sum(log.count("Epoch 1/1:") for log in logs) == 1
    assert (out / "model.pt").is_file() and (out / "model_final.pt").is_file()
    assert torch.load(out / "model_final.pt", weights_only=True)["trainer"]["iteration"] == 5


# ---- the helpers in a single process: each is a no-op, so the single-GPU configs keep working


def test_helpers_do_nothing_in_a_single_process(tmp_path, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert not distributed.launched_by_torchrun()
    assert distributed.init_distributed() is False
    assert distributed.is_main_process() and not distributed.is_distributed()
    net = torch.nn.Linear(2, 2)
    assert distributed.wrap_ddp(net) is net
    assert distributed.distributed_sampler(list(range(5))) is None
    assert distributed.gather_lists([1, 2]) == [1, 2]
    assert distributed.reduce_sum(1.5, 2) == [1.5, 2.0]
    assert distributed.rank0_summary_writer(tmp_path / "tb") is not None
    calls = []
    assert distributed.main_process_first(lambda x: calls.append(x) or x * 2)(3) == 6 and calls == [3]
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.local_device() == (torch.device("cuda", 1) if torch.cuda.is_available() else torch.device("cpu"))
