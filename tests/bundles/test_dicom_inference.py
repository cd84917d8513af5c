"""nuclei_seg's inference.json on DICOM inputs: a slice, a series folder, a multi-frame file, an RLE-compressed file
and a compressed file without a decoder, next to a PNG.

Each DICOM input gets ``<name>.nii.gz`` with the input's geometry (affines computed by hand from the tags written by
tests/dicom_files.py) and, with ``--dicom_seg true``, ``<name>_seg.dcm`` referencing the input's study and instances,
holding the same mask; the undecodable file is the one failure, named in failures.json with its transfer syntax and
the fix. The network is nuclei_seg's random one with its head shifted so that masks are neither empty nor full.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pydicom = pytest.importorskip("pydicom")
hd = pytest.importorskip("highdicom")

import dicom_files as df  # noqa: E402
import nibabel as nib  # noqa: E402
from conftest import REPO_ROOT  # noqa: E402
from monai.bundle import ConfigParser  # noqa: E402
from PIL import Image  # noqa: E402
from test_inference_bad_files import OVERRIDES, _config, _infer  # noqa: E402

from medkit.data.dicom import read_dicom  # noqa: E402

SAGITTAL = np.array([[0, 0, 2.0, -10], [-0.8, 0, 0, 20], [0, -0.5, 0, 30], [0, 0, 0, 1]])
SERIES = np.array([[-0.8, 0, 0, -10], [0, -0.5, 0, 20], [0, 0, 2.5, 30], [0, 0, 0, 1]])
AXIAL = np.array([[-0.8, 0, 0, -10], [0, -0.5, 0, 20], [0, 0, 2.0, 30], [0, 0, 0, 1]])


def _centred_checkpoint(folder, monkeypatch) -> str:
    monkeypatch.chdir(REPO_ROOT)  # the config's % macros name train.json from the repository root
    parser = ConfigParser()
    parser.read_config(str(_config("nuclei_seg")))
    parser.update(OVERRIDES["nuclei_seg"])
    torch.manual_seed(0)
    network = parser.get_parsed_content("network_def").eval()
    with torch.no_grad():
        logits = network(torch.randn(1, 1, *OVERRIDES["nuclei_seg"]["spatial_size"]))
    state = network.state_dict()
    state["head.bias"] -= logits.transpose(0, 1).flatten(1).median(dim=1).values  # per output channel
    torch.save(state, folder / "model.pt")
    return folder / "model.pt"


@pytest.fixture
def inputs(tmp_path):
    """The input folder and the source datasets of each DICOM input."""
    src = tmp_path / "inputs"
    sources = {"slice": [df.ct_slice(df.pixels(seed=7), orientation=df.SAGITTAL)], "ct": df.write_series(src / "ct")}
    df.save(sources["slice"][0], src / "slice.dcm")
    sources["mf"] = [df.write_enhanced_multiframe(src / "mf.dcm", df.write_series(tmp_path / "for_mf"))]
    rle = df.ct_slice(df.pixels(seed=8))
    rle.compress(pydicom.uid.RLELossless, df.pixels(seed=8))
    sources["rle"] = [pydicom.dcmread(df.save(rle, src / "rle.dcm"))]
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(src / "a.png")
    return src, sources


def _check_seg(path, sources, nifti):
    """The SEG at ``path`` is in the sources' study, references each source instance and holds the NIfTI's mask."""
    seg = hd.seg.segread(path)
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
    referenced = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    assert sorted(r.ReferencedSOPInstanceUID for r in referenced) == sorted(ds.SOPInstanceUID for ds in sources)
    mask = np.asarray(nifti.dataobj)
    if len(sources) == 1 and "NumberOfFrames" in sources[0]:
        frames = list(range(1, int(sources[0].NumberOfFrames) + 1))
        pixels = seg.get_pixels_by_source_frame(sources[0].SOPInstanceUID, frames, segment_numbers=[1])
    else:
        pixels = seg.get_pixels_by_source_instance([ds.SOPInstanceUID for ds in sources], segment_numbers=[1])
    np.testing.assert_array_equal(pixels[..., 0], mask.transpose(2, 1, 0))


def test_dicom_inputs(tmp_path, inputs, monkeypatch):
    src, sources = inputs
    undecodable = df.undecodable_syntax()
    if undecodable is not None:
        ds = df.jpeg_baseline(df.ct_slice(df.pixels(high=200).astype(np.uint8)), df.pixels(high=200).astype(np.uint8))
        ds.file_meta.TransferSyntaxUID = undecodable
        df.save(ds, src / "lossless.dcm")
    ckpt, out = _centred_checkpoint(tmp_path, monkeypatch), tmp_path / "preds"

    proc = _infer("nuclei_seg", src, out, ckpt, "--dicom_seg", "true")
    failures = json.loads((out / "failures.json").read_text())
    if undecodable is None:
        assert proc.returncode == 0 and failures == []
    else:
        assert proc.returncode != 0
        assert [f["file"] for f in failures] == [str(src / "lossless.dcm")]
        assert (
            f"{undecodable.name} ({undecodable}) and no decoder for it is installed; pip install"
            in (failures[0]["reason"])
        )
    assert np.asarray(Image.open(out / "a.png")).shape == (20, 24)  # other formats as before

    # the multi-frame file's frames as read_dicom orders them (its geometry is checked by hand in tests/data)
    expected = {"slice": SAGITTAL, "ct": SERIES, "rle": AXIAL, "mf": read_dicom(src / "mf.dcm").affine.numpy()}
    for name, datasets in sources.items():
        nifti = nib.load(out / f"{name}.nii.gz")
        assert nifti.shape == (df.COLUMNS, df.ROWS, 1 if name in ("slice", "rle") else 3)
        np.testing.assert_allclose(nifti.affine, expected[name], atol=1e-5)
        assert 0 < np.asarray(nifti.dataobj).mean() < 1 and set(np.unique(nifti.dataobj)) == {0, 1}
        _check_seg(out / f"{name}_seg.dcm", datasets, nifti)

    proc = _infer("nuclei_seg", src, out, ckpt, "--dicom_seg", "true")
    assert f"5 of {6 if undecodable else 5} inputs already have their outputs: skipped" in proc.stdout
