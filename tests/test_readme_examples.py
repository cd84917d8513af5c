"""The README's Python example runs as written (on random weights saved where the main job would write them)."""

from __future__ import annotations

import contextlib
import io
import json
import re

import torch
from conftest import REPO_ROOT
from monai.bundle import ConfigParser

from medkit.data.synthetic_nuclei import generate_nuclei_dataset


def _block(marker: str) -> str:
    text = (REPO_ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {marker} .*?-->\n```python\n(.*?)```", text, re.S)
    assert match, f"README.md has no python block after <!-- {marker} ... -->"
    return match.group(1)


def test_python_api_example(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the example's relative paths: a main job's run folder and its data
    generate_nuclei_dataset(tmp_path / "data" / "nuclei_synthetic", num_images=2, image_size=48, seed=0)
    parser = ConfigParser()
    parser.read_config(str(REPO_ROOT / "bundles" / "nuclei_seg" / "configs" / "train.json"))
    run = tmp_path / "runs" / "nuclei_seg" / "default"
    run.mkdir(parents=True)
    torch.save(parser.get_parsed_content("network_def").state_dict(), run / "model.pt")
    (run / "run_settings.json").write_text(json.dumps({"spatial_size": [256, 256]}))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_block("README-PYTHON-API"), "README.md", "exec"), {})
    assert out.getvalue().startswith("(48, 48) uint8 ")
