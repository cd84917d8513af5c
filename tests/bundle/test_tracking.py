"""MLflow tracking through MONAI's --tracking with medkit's settings file: params, per-epoch metrics, the best model."""

from __future__ import annotations

import pytest
from conftest import REPO_ROOT, run_bundle_in_process

from medkit.data.synthetic_nuclei import generate_nuclei_dataset

mlflow = pytest.importorskip("mlflow", reason="the tracking extra is not installed: pip install -e '.[tracking]'")


def test_training_run_is_tracked_in_the_run_folder(tmp_path):
    data = generate_nuclei_dataset(tmp_path / "data", num_images=10, image_size=64, seed=0)
    out = tmp_path / "run"
    run_bundle_in_process(
        "run", "--config_file", str(REPO_ROOT / "bundles" / "nuclei_seg" / "configs" / "train.json"),
        "--tracking", str(REPO_ROOT / "bundles" / "mlflow_tracking.json"),
        "--dataset_dir", str(data), "--output_dir", str(out), "--epochs", "2", "--batch_size", "2",
        "--spatial_size", "[64,64]", "--channels", "[4,8,16]", "--num_workers", "0",
    )  # fmt: skip
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{out / 'mlruns.db'}")
    experiment = client.get_experiment_by_name("nuclei_seg")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    assert run.data.params["epochs"] == "2" and run.data.params["channels"] == "[4, 8, 16]"
    history = client.get_metric_history(run.info.run_id, "val_mean_dice")
    assert [m.step for m in history] == [1, 2], "one validation value per epoch"
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 2 * 3  # 7 images, batch 2: 3 a epoch
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"model.pt", "run_settings.json"}
