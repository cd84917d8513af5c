"""Reading DICOM inputs (medkit.data.dicom): the volume and its geometry for a slice, a series folder and multi-frame
files, compressed pixel data, and how list_images groups a folder's DICOM files into inputs.

The expected affines are computed by hand from the tags the files are written with (tests/dicom_files.py): column
``i`` moves along the row direction by the column spacing (0.8 mm), row ``j`` along the column direction by the row
spacing (0.5 mm), slice ``k`` along the normal (row x column) by the slice step; LPS is turned into RAS by negating x
and y.
"""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("highdicom")

import dicom_files as df  # noqa: E402
from monai.transforms import LoadImage  # noqa: E402

from medkit.data import dicom, list_images  # noqa: E402
from medkit.data.dicom import dicom_stem, group_series, is_dicom, read_dicom  # noqa: E402

# RAS affines from the tags, by hand
AXIAL = np.array([[-0.8, 0, 0, -10], [0, -0.5, 0, 20], [0, 0, 2.0, 30], [0, 0, 0, 1]])  # normal (0, 0, 1) x 2 mm
SAGITTAL = np.array([[0, 0, 2.0, -10], [-0.8, 0, 0, 20], [0, -0.5, 0, 30], [0, 0, 0, 1]])  # normal (-1, 0, 0) LPS
SERIES = np.array([[-0.8, 0, 0, -10], [0, -0.5, 0, 20], [0, 0, 2.5, 30], [0, 0, 0, 1]])  # slices 2.5 mm apart


def _columns_first(array: np.ndarray) -> np.ndarray:
    """DICOM pixels ``(rows, columns)`` or ``(frames, rows, columns)`` in read_dicom's layout ``(W, H, D)``."""
    return array.T[:, :, None] if array.ndim == 2 else array.transpose(2, 1, 0)


@pytest.mark.parametrize(
    "orientation, expected", [(df.AXIAL, AXIAL), (df.SAGITTAL, SAGITTAL)], ids=["axial", "sagittal"]
)
def test_single_slice(tmp_path, orientation, expected):
    array = df.pixels()
    path = df.save(df.ct_slice(array, orientation=orientation), tmp_path / "slice.dcm")
    image = read_dicom(path)
    assert tuple(image.shape) == (1, df.COLUMNS, df.ROWS, 1)
    np.testing.assert_array_equal(image[0].numpy(), _columns_first(array))
    np.testing.assert_allclose(image.affine.numpy(), expected, atol=1e-6)
    assert image.meta["filename_or_obj"] == str(path)
    # where MONAI's PydicomReader has the geometry (in-plane axes, origin), it agrees
    monai = LoadImage(reader="PydicomReader", image_only=True)(str(path))
    np.testing.assert_allclose(monai.affine.numpy()[:, [0, 1, 3]], expected[:, [0, 1, 3]], atol=1e-6)


def test_series_folder(tmp_path):
    slices = df.write_series(tmp_path / "ct", count=4)
    image = read_dicom(tmp_path / "ct")
    assert tuple(image.shape) == (1, df.COLUMNS, df.ROWS, 4)
    for k, ds in enumerate(slices):  # stacked in InstanceNumber order, not file-name order
        np.testing.assert_array_equal(image[0, ..., k].numpy(), ds.pixel_array.T)
    np.testing.assert_allclose(image.affine.numpy(), SERIES, atol=1e-6)
    monai = LoadImage(reader="PydicomReader", image_only=True)(str(tmp_path / "ct"))
    np.testing.assert_allclose(monai.affine.numpy(), SERIES, atol=1e-6)


def test_enhanced_multiframe(tmp_path):
    """Each frame lands where its PlanePositionSequence says, with its own pixels (highdicom may reorder frames)."""
    slices = df.write_enhanced_multiframe(tmp_path / "mf.dcm", df.write_series(tmp_path / "ct", count=3))
    assert slices.NumberOfFrames == 3 and "ImagePositionPatient" not in slices
    image = read_dicom(tmp_path / "mf.dcm")
    assert tuple(image.shape) == (1, df.COLUMNS, df.ROWS, 3)
    source = {round(float(ds.ImagePositionPatient[2]), 3): ds for ds in df.write_series(tmp_path / "again", count=3)}
    for k, group in enumerate(slices.PerFrameFunctionalGroupsSequence):
        lps = np.asarray(group.PlanePositionSequence[0].ImagePositionPatient, float)
        np.testing.assert_allclose((image.affine.numpy() @ [0, 0, k, 1])[:3], lps * [-1, -1, 1], atol=1e-6)
        np.testing.assert_array_equal(image[0, ..., k].numpy(), source[round(lps[2], 3)].pixel_array.T)
    np.testing.assert_allclose(np.abs(image.affine.numpy()[:3, :2]), np.abs(SERIES[:3, :2]), atol=1e-6)
    np.testing.assert_allclose(abs(image.affine.numpy()[2, 2]), 2.5, atol=1e-6)


def test_classic_multiframe(tmp_path):
    """Frames without per-frame positions are stacked along the normal, one slice thickness apart."""
    array = df.pixels(frames=3)
    image = read_dicom(df.save(df.ct_slice(array), tmp_path / "mf.dcm"))
    np.testing.assert_array_equal(image[0].numpy(), _columns_first(array))
    np.testing.assert_allclose(image.affine.numpy(), AXIAL, atol=1e-6)


def test_colour_slice(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (df.ROWS, df.COLUMNS, 3), dtype=np.uint8)
    ds = df.ct_slice(rgb[..., 0])
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.PixelData = rgb.tobytes()
    image = read_dicom(df.save(ds, tmp_path / "rgb.dcm"))
    assert tuple(image.shape) == (3, df.COLUMNS, df.ROWS, 1)
    np.testing.assert_array_equal(image[..., 0].numpy().transpose(2, 1, 0), rgb)


def test_rle_lossless_decodes(tmp_path):
    array = df.pixels()
    ds = df.ct_slice(array)
    ds.compress(pydicom.uid.RLELossless, array)
    image = read_dicom(df.save(ds, tmp_path / "rle.dcm"))
    np.testing.assert_array_equal(image[0].numpy(), _columns_first(array))


def test_jpeg_baseline_decodes(tmp_path):
    array8 = (df.pixels(high=200) // 8 * 8).astype(np.uint8)
    path = df.save(df.jpeg_baseline(df.ct_slice(array8), array8), tmp_path / "jpeg.dcm")
    image = read_dicom(path)
    assert tuple(image.shape) == (1, df.COLUMNS, df.ROWS, 1)
    assert np.abs(image[0].numpy() - _columns_first(array8)).mean() < 8  # lossy, but the same picture


def test_undecodable_compression_fails_in_one_line(tmp_path):
    syntax = df.undecodable_syntax()
    if syntax is None:
        pytest.skip("every tried compressed transfer syntax has a decoder here")
    ds = df.jpeg_baseline(df.ct_slice(df.pixels(high=200).astype(np.uint8)), df.pixels(high=200).astype(np.uint8))
    ds.file_meta.TransferSyntaxUID = syntax
    path = df.save(ds, tmp_path / "lossless.dcm")
    with pytest.raises(ValueError, match="no decoder for it is installed") as caught:
        read_dicom(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: pixel data compressed as {syntax.name} ({syntax})")
    assert "pip install '" in message and "\n" not in message


def test_uneven_series_fails(tmp_path):
    slices = df.write_series(tmp_path / "ct", count=3)
    slices[2].ImagePositionPatient = [10.0, -20.0, 40.0]  # 2.5 mm, then 7.5 mm
    df.save(slices[2], next(p for p in (tmp_path / "ct").iterdir() if pydicom.dcmread(p).InstanceNumber == 3))
    with pytest.raises(ValueError, match=r"ct: its 3 slices .* are not evenly spaced"):
        read_dicom(tmp_path / "ct")


@pytest.mark.parametrize(
    "content, match",
    [(b"", "not a readable DICOM file"), (b"\x89PNG\r\n\x1a\n" + b"0" * 200, "not a readable DICOM file")],
    ids=["empty", "png"],
)
def test_bad_files_fail_naming_them(tmp_path, content, match):
    path = tmp_path / "bad.dcm"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as caught:
        read_dicom(path)
    assert str(caught.value).startswith(str(path))


def test_whole_slide_image_fails(tmp_path):
    ds = df.ct_slice(df.pixels(frames=2))
    ds.TotalPixelMatrixColumns, ds.TotalPixelMatrixRows = 48, 20  # two tiles side by side
    with pytest.raises(ValueError, match=r"wsi.dcm: a tiled whole-slide image \(2 tiles\) is not supported"):
        read_dicom(df.save(ds, tmp_path / "wsi.dcm"))


def test_duplicate_instance_numbers_fail(tmp_path):
    slices = df.write_series(tmp_path / "ct", count=2)
    slices[1].InstanceNumber = 1
    df.save(slices[1], tmp_path / "ct" / "IM0000.dcm")
    with pytest.raises(ValueError, match="share an InstanceNumber"):
        read_dicom(tmp_path / "ct")


def test_list_images_groups_series(tmp_path, caplog):
    """A one-series folder is one input; lone slices, multi-frame files and the files of a mixed folder are one each."""
    df.write_series(tmp_path / "in" / "ct", count=3)
    df.save(df.ct_slice(df.pixels()), tmp_path / "in" / "xray.DCM")
    df.save(df.ct_slice(df.pixels(frames=2)), tmp_path / "in" / "mf" / "a.dcm")
    df.save(df.ct_slice(df.pixels(seed=1)), tmp_path / "in" / "mf" / "b.dcm")  # another series beside it
    for name in ("c", "d"):  # multi-frame files of one series: each is a volume of its own
        df.save(df.ct_slice(df.pixels(frames=2), series="1.2.3"), tmp_path / "in" / "frames" / f"{name}.dcm")
    (tmp_path / "in" / "photo.png").write_bytes(b"")
    with caplog.at_level(logging.INFO, logger=dicom.__name__):
        items = list_images(tmp_path / "in")
    names = sorted(str(item["image"]).removeprefix(str((tmp_path / "in").resolve()) + "/") for item in items)
    assert names == ["ct", "frames/c.dcm", "frames/d.dcm", "mf/a.dcm", "mf/b.dcm", "photo.png", "xray.DCM"]
    assert "mf holds 2 series: each DICOM file is predicted on its own" in caplog.text
    assert [item["image"] for item in list_images(tmp_path / "in" / "ct")] == [str((tmp_path / "in" / "ct").resolve())]


def test_group_series_without_pydicom(tmp_path, monkeypatch):
    df.write_series(tmp_path / "ct", count=2)
    files = sorted((tmp_path / "ct").iterdir())
    monkeypatch.setitem(sys.modules, "pydicom", None)  # import pydicom then raises ImportError
    assert group_series(files) == files
    with pytest.raises(ValueError, match=r"need the dicom extra: pip install -e '\.\[dicom\]'"):
        read_dicom(files[0])


def test_names(tmp_path):
    folder = tmp_path / "1.2.840.113619.2"
    df.write_series(folder, count=2)
    assert is_dicom(folder) and dicom_stem(folder) == "1.2.840.113619.2"  # a UID folder keeps its whole name
    assert is_dicom(tmp_path / "x.DICOM") and dicom_stem(tmp_path / "x.DICOM") == "x"
    assert not is_dicom(tmp_path / "x.png") and not is_dicom("") and not is_dicom(tmp_path / "empty")
