"""docs/adding_a_bundle.md builds a working bundle: its file blocks are copied into a fresh folder and run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT

RECIPE = REPO_ROOT / "docs" / "adding_a_bundle.md"
_BLOCK = re.compile(r"^#### `(configs/[\w.]+)`\n```json\n(.*?)^```", re.S | re.M)


def recipe_files() -> dict[str, str]:
    """``{relative path: text}`` of every file block in the recipe."""
    return {path: text for path, text in _BLOCK.findall(RECIPE.read_text())}


def _bundle(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def test_recipe_builds_a_bundle_that_trains_and_predicts(tmp_path):
    files = recipe_files()
    assert sorted(files) == ["configs/inference.json", "configs/metadata.json", "configs/train.json"]
    bundle = tmp_path / "bundles" / "blob_seg"
    for path, text in files.items():
        (bundle / path).parent.mkdir(parents=True, exist_ok=True)
        (bundle / path).write_text(text)
    shutil.copy(REPO_ROOT / "bundles" / "nuclei_seg" / "configs" / "logging.conf", bundle / "configs")
    train = _bundle(tmp_path, "--config_file", "bundles/blob_seg/configs/train.json", "--epochs", "1")
    assert "SYNTHETIC" in train.stdout + train.stderr  # the generated default says so
    run = tmp_path / "runs" / "blob_seg" / "default"
    assert (run / "model.pt").is_file() and (run / "model_final.pt").is_file() and (run / "train.log").is_file()
    _bundle(
        tmp_path,
        "--config_file",
        "bundles/blob_seg/configs/inference.json",
        "--input_dir",
        str(tmp_path / "data" / "blob_synthetic"),
        "--output_dir",
        str(tmp_path / "preds"),
    )
    assert len(list((tmp_path / "preds").glob("*.png"))) == 12  # one mask per image, the default checkpoint used
