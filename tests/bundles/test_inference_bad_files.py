"""Inference on a folder with bad files, one bundle per kind of output: masks in the input's format (nuclei_seg),
one classifier CSV per folder (pcam_transfer) and one CSV per sequence file (dna_binding).

Each folder holds good files plus a zero-byte, a truncated and a wrong-format file: every good file gets its output,
``failures.json`` lists exactly the bad ones with a reason, and the run exits non-zero; a rerun skips the finished
files and ``--overwrite true`` predicts them again. The networks keep their random initial weights: what is tested is
which files get written, not what they say.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import torch
from conftest import REPO_ROOT, run_bundle, run_bundle_in_process
from PIL import Image

# the small networks of the bundles' own smoke tests
OVERRIDES = {
    "nuclei_seg": {"spatial_size": [64, 64], "channels": [4, 8, 16], "num_workers": 0},
    "pcam_transfer": {"spatial_size": [32, 32], "hidden_channels": 8, "batch_size": 4, "num_workers": 0},
    "dna_binding": {
        "network": "danq",
        "hidden_dim": 8,
        "conv_channels": 8,
        "kernel_size": 15,
        "pool_size": 4,
        "batch_size": 4,
        "num_workers": 0,
    },
}
OLD_NS = 1_000_000_000 * 10**9  # an mtime in 2001: a file still this old was not written again


def _config(bundle: str) -> Path:
    return REPO_ROOT / "bundles" / bundle / "configs" / "inference.json"


def _random_checkpoint(bundle: str, folder: Path) -> Path:
    """The randomly initialised ``network_def`` of ``bundle`` (with its small overrides) saved as a ``model.pt``."""
    from monai.bundle import ConfigParser

    cwd = os.getcwd()
    os.chdir(REPO_ROOT)  # the config's % macros name train.json from the repository root
    try:
        parser = ConfigParser()
        parser.read_config(str(_config(bundle)))
        parser.update(OVERRIDES[bundle])
        torch.manual_seed(0)
        state = parser.get_parsed_content("network_def").state_dict()
    finally:
        os.chdir(cwd)
    path = folder / "model.pt"
    torch.save(state, path)
    return path


def _infer(bundle: str, src: Path, out: Path, ckpt: Path, *extra: str, subprocess: bool = False):
    args = ["run", "--config_file", str(_config(bundle)), "--input_dir", str(src), "--output_dir", str(out)]
    args += ["--ckpt_path", str(ckpt), "--dataset_dir", str(src.parent / "no_training_data_here")]
    for key, value in OVERRIDES[bundle].items():
        args += [f"--{key}", json.dumps(value)]
    return (run_bundle if subprocess else run_bundle_in_process)(*args, *extra, check=False)


def _png_bytes(size: tuple[int, int] = (20, 24), seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _add_bad_files(src: Path, suffix: str, truncated: bytes, wrong: bytes) -> list[str]:
    """A zero-byte, a truncated and a wrong-format file; their names."""
    bad = {f"empty{suffix}": b"", f"truncated{suffix}": truncated, f"wrong_format{suffix}": wrong}
    for name, data in bad.items():
        (src / name).write_bytes(data)
    return sorted(bad)


def _assert_failed(proc, out: Path, bad: list[str], inputs: int) -> None:
    """The run exited non-zero naming how many failed and failures.json, which lists exactly ``bad``, with reasons."""
    assert proc.returncode != 0
    failures = json.loads((out / "failures.json").read_text())
    assert sorted(Path(f["file"]).name for f in failures) == bad
    assert all(f["reason"] and "\n" not in f["reason"] for f in failures)
    assert f"UserError: {len(bad)} of {inputs} inputs failed and have no prediction; {out / 'failures.json'}" in (
        proc.stderr
    )


def _age(paths: list[Path]) -> None:
    for path in paths:
        os.utime(path, ns=(OLD_NS, OLD_NS))


def _rewritten(paths: list[Path]) -> list[bool]:
    return [path.stat().st_mtime_ns != OLD_NS for path in paths]


def test_segmentation_masks(tmp_path):
    src, out = tmp_path / "inputs", tmp_path / "preds"
    src.mkdir()
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        (src / name).write_bytes(_png_bytes(seed=i))
    bad = _add_bad_files(src, ".png", _png_bytes()[:200], b"id,sequence\nr1,ACGT\n")
    ckpt = _random_checkpoint("nuclei_seg", tmp_path)

    proc = _infer("nuclei_seg", src, out, ckpt)
    _assert_failed(proc, out, bad, inputs=6)
    masks = [out / name for name in ("a.png", "b.png", "c.png")]
    assert all(np.asarray(Image.open(m)).shape == (20, 24) for m in masks)
    # a mask and a label image per good input, nothing for the bad files
    assert sorted(p.name for p in out.glob("*.png")) == sorted(f"{s}{x}.png" for s in "abc" for x in ("", "_instances"))

    _age(masks)
    proc = _infer("nuclei_seg", src, out, ckpt)
    _assert_failed(proc, out, bad, inputs=3)  # the bad files are tried again
    assert "3 of 6 inputs already have their outputs: skipped" in proc.stdout
    assert _rewritten(masks) == [False, False, False]

    proc = _infer("nuclei_seg", src, out, ckpt, "--overwrite", "true")
    _assert_failed(proc, out, bad, inputs=6)
    assert _rewritten(masks) == [True, True, True]


def test_classifier_csv(tmp_path):
    src, out = tmp_path / "slide", tmp_path / "preds"
    src.mkdir()
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        (src / name).write_bytes(_png_bytes((32, 32), seed=i))
    bad = _add_bad_files(src, ".png", _png_bytes((32, 32))[:300], b"not an image")
    ckpt = _random_checkpoint("pcam_transfer", tmp_path)
    table = out / "slide_predictions.csv"

    def files() -> list[str]:
        return [row["file"] for row in csv.DictReader(table.open())]

    _assert_failed(_infer("pcam_transfer", src, out, ckpt), out, bad, inputs=6)
    assert files() == ["a.png", "b.png", "c.png"]
    first = {row["file"]: row["probability"] for row in csv.DictReader(table.open())}

    (src / "d.png").write_bytes(_png_bytes((32, 32), seed=3))  # a new patch: only it is predicted, the rows stay
    proc = _infer("pcam_transfer", src, out, ckpt)
    _assert_failed(proc, out, bad, inputs=4)
    assert "3 of 7 inputs already have their outputs: skipped" in proc.stdout
    assert files() == ["a.png", "b.png", "c.png", "d.png"]
    assert {row["file"]: row["probability"] for row in csv.DictReader(table.open()) if row["file"] != "d.png"} == first

    _age([table])
    _assert_failed(_infer("pcam_transfer", src, out, ckpt), out, bad, inputs=3)
    assert _rewritten([table]) == [False]  # nothing new: the table is left as it is

    _assert_failed(_infer("pcam_transfer", src, out, ckpt, "--overwrite", "true"), out, bad, inputs=7)
    assert _rewritten([table]) == [True] and files() == ["a.png", "b.png", "c.png", "d.png"]


def test_sequence_files(tmp_path):
    src, out = tmp_path / "inputs", tmp_path / "preds"
    src.mkdir()
    good = "id,sequence\ns1,ACGTACGTAC\ns2,TTGACAGGCA\n"
    (src / "peaks.csv").write_text(good)
    (src / "more.csv").write_text("id,sequence\nm1,GGGCCCAATT\n")
    bad = _add_bad_files(src, ".csv", good.encode()[: good.index("s2,") + 3], _png_bytes())  # cut after "s2,"
    ckpt = _random_checkpoint("dna_binding", tmp_path)
    tables = [out / "more_predictions.csv", out / "peaks_predictions.csv"]

    # a subprocess, as a user runs it: the last line of stderr is the one-line summary
    proc = _infer("dna_binding", src, out, ckpt, subprocess=True)
    _assert_failed(proc, out, bad, inputs=6)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].startswith("medkit: UserError: 3 of 6")
    assert [[row["id"] for row in csv.DictReader(t.open())] for t in tables] == [["m1"], ["s1", "s2"]]
    reasons = {Path(f["file"]).name: f["reason"] for f in json.loads((out / "failures.json").read_text())}
    assert "'s2'" in reasons["truncated.csv"] and "utf-8" in reasons["wrong_format.csv"].lower()  # the readers' words

    _age(tables)
    proc = _infer("dna_binding", src, out, ckpt)
    _assert_failed(proc, out, bad, inputs=3)
    assert "3 of 6 inputs already have their outputs: skipped" in proc.stdout
    assert _rewritten(tables) == [False, False]

    _assert_failed(_infer("dna_binding", src, out, ckpt, "--overwrite", "true"), out, bad, inputs=6)
    assert _rewritten(tables) == [True, True]
