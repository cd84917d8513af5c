"""Shared fixtures: determinism and tiny generated nuclei datasets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    np.random.seed(0)
    yield


@pytest.fixture
def real_data_dir() -> Path:
    """``$MEDKIT_REAL_DATA``; tests using it skip when the variable is unset or the folder is missing."""
    root = os.environ.get("MEDKIT_REAL_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("MEDKIT_REAL_DATA is not set to a folder")
    return Path(root)


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def tiny_dsb(tmp_path: Path) -> Path:
    """A 2-case DSB2018 layout: case ``a`` is RGBA 12x20 with two nuclei, case ``b`` is RGB 16x16 with one."""
    root = tmp_path / "stage1_train"
    img = np.zeros((12, 20, 4), np.uint8)
    img[..., 3] = 255
    img[2:5, 3:7, :3] = 200
    img[8:11, 14:18, :3] = 120
    write_png(root / "a" / "images" / "a.png", img)
    m1 = np.zeros((12, 20), np.uint8)
    m1[2:5, 3:7] = 255
    m2 = np.zeros((12, 20), np.uint8)
    m2[8:11, 14:18] = 255
    write_png(root / "a" / "masks" / "m1.png", m1)
    write_png(root / "a" / "masks" / "m2.png", m2)
    img_b = np.zeros((16, 16, 3), np.uint8)
    img_b[4:8, 4:8] = 255
    write_png(root / "b" / "images" / "b.png", img_b)
    mb = np.zeros((16, 16), np.uint8)
    mb[4:8, 4:8] = 255
    write_png(root / "b" / "masks" / "m.png", mb)
    return root


def bundle_layers(configs: Path, *names: str) -> str:
    """The ``--config_file`` value that layers ``names`` (files in ``configs``) in order."""
    return "[" + ",".join(f"'{configs / n}'" for n in names) + "]"


def run_bundle(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs ``python -m monai.bundle <args>`` from the repo root on the CPU, as a user would."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "monai.bundle", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"monai.bundle {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc
