"""DICOM inputs through a 2D pipeline (medkit.transforms.dicom): slices out, predictions gathered back into NIfTI
with the input's geometry and into a DICOM SEG that references the input's instances and reads back with highdicom.

The "prediction" here is a threshold of the input itself, so each written voxel can be checked against the DICOM
pixel it came from.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pydicom = pytest.importorskip("pydicom")
hd = pytest.importorskip("highdicom")

import dicom_files as df  # noqa: E402
import nibabel as nib  # noqa: E402
from monai.transforms import EnsureTyped, LoadImaged  # noqa: E402

from medkit.transforms import (  # noqa: E402
    DicomMaskWriter,
    DicomSlicesd,
    SaveLikeInput,
    compose_with_dicom,
    write_dicom_seg,
)

SERIES = np.array([[-0.8, 0, 0, -10], [0, -0.5, 0, 20], [0, 0, 2.5, 30], [0, 0, 0, 1]])  # by hand: dicom_files.py


def _predict(item: dict) -> torch.Tensor:
    """A stand-in prediction: the slice thresholded, keeping the slice's metadata."""
    return (item["image"] > 500).float()


@pytest.fixture
def series(tmp_path):
    """A 3-slice series folder and its datasets in slice order."""
    return tmp_path / "ct", df.write_series(tmp_path / "ct", count=3)


def test_slices_of_a_series(series):
    folder, slices = series
    items = DicomSlicesd("image", loader=LoadImaged("image"))({"image": str(folder), "id": "case"})
    assert len(items) == 3
    for k, (item, ds) in enumerate(zip(items, slices)):
        image = item["image"]
        assert item["id"] == "case" and tuple(image.shape) == (1, df.COLUMNS, df.ROWS)
        np.testing.assert_array_equal(image[0].numpy(), ds.pixel_array.T)
        assert image.meta["filename_or_obj"] == str(folder)
        assert (image.meta["dicom_slice"], image.meta["dicom_slices"]) == (k, 3)
        np.testing.assert_allclose(image.meta["dicom_volume_affine"].numpy(), SERIES, atol=1e-6)
        np.testing.assert_allclose(image.affine[:3, 3].numpy(), [-10, 20, 30 + 2.5 * k], atol=1e-6)


def test_other_files_go_to_the_bundle_loader(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((5, 7), np.uint8)).save(tmp_path / "a.png")
    item = DicomSlicesd("image", loader=LoadImaged("image", reader="PILReader"))({"image": str(tmp_path / "a.png")})
    assert isinstance(item, dict) and tuple(item["image"].shape) == (7, 5)


def test_compose_with_dicom_wraps_the_image_loader():
    label_loader, image_loader, typer = LoadImaged("label"), LoadImaged(["image"]), EnsureTyped("image")
    composed = compose_with_dicom([label_loader, image_loader, typer])
    first, wrapped, last = composed.transforms
    assert first is label_loader and last is typer
    assert isinstance(wrapped, DicomSlicesd) and wrapped.loader is image_loader
    with pytest.raises(ValueError, match=r"found no LoadImaged of \['image'\]"):
        compose_with_dicom([label_loader, typer])


def test_writer_gathers_a_series_into_nifti_and_seg(series, tmp_path):
    folder, slices = series
    items = DicomSlicesd("image", loader=LoadImaged("image"))({"image": str(folder)})
    writer = DicomMaskWriter(tmp_path / "out", dicom_seg=True)
    assert writer.output_path(folder) == tmp_path / "out" / "ct_seg.dcm"
    for item in (items[2], items[0]):  # out of order; nothing is written before the last slice
        writer(_predict(item))
    assert not (tmp_path / "out").exists()
    writer(_predict(items[1]))

    expected = np.stack([ds.pixel_array.T > 500 for ds in slices], axis=-1)
    nifti = nib.load(tmp_path / "out" / "ct.nii.gz")
    np.testing.assert_array_equal(np.asarray(nifti.dataobj), expected)
    np.testing.assert_allclose(nifti.affine, SERIES, atol=1e-5)
    assert int(nifti.header["sform_code"]) == int(nifti.header["qform_code"]) == 1  # scanner coordinates

    seg = hd.seg.segread(tmp_path / "out" / "ct_seg.dcm")
    assert seg.StudyInstanceUID == slices[0].StudyInstanceUID
    assert seg.SeriesInstanceUID != slices[0].SeriesInstanceUID and seg.Modality == "SEG"
    uids = [ds.SOPInstanceUID for ds in slices]
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == slices[0].SeriesInstanceUID
    assert sorted(r.ReferencedSOPInstanceUID for r in referenced.ReferencedInstanceSequence) == sorted(uids)
    masks = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1])
    np.testing.assert_array_equal(masks[..., 0], expected.transpose(2, 1, 0))


def test_seg_of_a_multiframe_image(tmp_path):
    source = df.write_enhanced_multiframe(tmp_path / "mf.dcm", df.write_series(tmp_path / "ct", count=3))
    items = DicomSlicesd("image", loader=LoadImaged("image"))({"image": str(tmp_path / "mf.dcm")})
    writer = DicomMaskWriter(tmp_path / "out", dicom_seg=True, output_postfix="_mask")
    for item in items:
        writer(_predict(item))
    seg = hd.seg.segread(tmp_path / "out" / "mf_mask_seg.dcm")
    assert seg.StudyInstanceUID == source.StudyInstanceUID
    masks = seg.get_pixels_by_source_frame(
        source_sop_instance_uid=source.SOPInstanceUID, source_frame_numbers=[1, 2, 3], segment_numbers=[1]
    )
    np.testing.assert_array_equal(masks[..., 0], source.pixel_array > 500)
    assert np.asarray(nib.load(tmp_path / "out" / "mf_mask.nii.gz").dataobj).shape == (df.COLUMNS, df.ROWS, 3)


def test_seg_labels_become_segments(tmp_path):
    source = df.save(df.ct_slice(df.pixels()), tmp_path / "slice.dcm")
    labels = np.zeros((df.COLUMNS, df.ROWS, 1), np.uint8)
    labels[2:5, 3:9] = 1
    labels[10:12, 1:4] = 2
    seg = hd.seg.segread(write_dicom_seg(labels, source, tmp_path / "seg.dcm", segment_labels=["cell", "nucleus"]))
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["cell", "nucleus"]
    uid = pydicom.dcmread(source).SOPInstanceUID
    masks = seg.get_pixels_by_source_instance(source_sop_instance_uids=[uid], segment_numbers=[1, 2])
    np.testing.assert_array_equal(masks[0, ..., 0], labels[..., 0].T == 1)
    np.testing.assert_array_equal(masks[0, ..., 1], labels[..., 0].T == 2)


def test_save_like_input_writes_dicom_as_nifti(tmp_path):
    """SaveLikeInput names and writes DICOM predictions through DicomMaskWriter, and other formats as before."""
    source = df.save(df.ct_slice(df.pixels(), orientation=df.SAGITTAL), tmp_path / "in" / "slice.dcm")
    saver = SaveLikeInput(tmp_path / "out")
    assert saver.output_path(source) == tmp_path / "out" / "slice.nii.gz"
    assert saver.output_path(tmp_path / "in" / "a.png") == tmp_path / "out" / "a.png"
    assert SaveLikeInput(tmp_path / "out", dicom_seg="true").output_path(source) == tmp_path / "out" / "slice_seg.dcm"
    (item,) = DicomSlicesd("image", loader=LoadImaged("image"))({"image": str(source)})
    saver(_predict(item))
    nifti = nib.load(tmp_path / "out" / "slice.nii.gz")
    assert nifti.shape == (df.COLUMNS, df.ROWS, 1)
    sagittal = [[0, 0, 2.0, -10], [-0.8, 0, 0, 20], [0, -0.5, 0, 30], [0, 0, 0, 1]]  # by hand, as in tests/data
    np.testing.assert_allclose(nifti.affine, sagittal, atol=1e-5)
    assert not list((tmp_path / "out").glob("*.dcm"))


def test_writer_needs_slices_from_dicom_slices(tmp_path):
    """A DICOM prediction loaded some other way (LoadImaged alone) fails in one line saying how to load it."""
    source = df.save(df.ct_slice(df.pixels()), tmp_path / "slice.dcm")
    with pytest.raises(ValueError, match=r"slice.dcm has no DICOM slice metadata: load DICOM inputs with medkit"):
        SaveLikeInput(tmp_path / "out")(LoadImaged("image", reader="PydicomReader")({"image": str(source)})["image"])
