from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT

from medkit.cli import main


def test_synth_nuclei_writes_dsb_layout(tmp_path, capsys):
    assert main(["data", "synth", "nuclei", str(tmp_path / "s"), "--num-images", "3", "--size", "48"]) == 0
    root = tmp_path / "s" / "stage1_train"
    assert capsys.readouterr().out.strip() == str(root)
    assert len([d for d in root.iterdir() if (d / "images").is_dir()]) == 3


def test_bad_input_gives_one_line_error(tmp_path, capsys):
    assert main(["data", "synth", "nuclei", str(tmp_path / "s"), "--num-images", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "num_images" in err[0]


def test_console_help_lists_commands():
    proc = subprocess.run(
        [sys.executable, "-m", "medkit.cli", "data", "--help"], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert proc.returncode == 0 and "fetch" in proc.stdout and "synth" in proc.stdout


def test_synth_pcam_writes_named_patches(tmp_path, capsys):
    assert main(["data", "synth", "pcam", str(tmp_path / "p"), "--num-images", "4"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "p")
    assert sorted(p.name for p in (tmp_path / "p").glob("*.jpg")) == ["N_2.jpg", "N_3.jpg", "T_0.jpg", "T_1.jpg"]
