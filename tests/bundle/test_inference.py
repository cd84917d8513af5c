"""medkit.bundle.inference on a toy evaluator (failed inputs, skipped finished inputs, failures.json) and the atomic
writers behind it (a write that fails midway leaves the old file and no temporary one)."""

from __future__ import annotations

import csv
import errno
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.data import Dataset, MetaTensor
from monai.engines import SupervisedEvaluator
from monai.transforms import Lambdad
from PIL import Image

from medkit.bundle import InferenceDataLoader, UserError, read_each, run_inference
from medkit.handlers import PredictionCSVWriter, SegmentationOverlaySaver
from medkit.transforms import AtomicSaveImaged, SaveGreyLabel, SaveLikeInput
from medkit.utils import TEMP_PREFIX, atomic_path, save_json

# the value of each input; a negative one fails to "load"
VALUES = [1, -1, -2, 3, -4, -5, 6, -7, -8]
BAD = [f"{i}.png" for i, v in enumerate(VALUES) if v < 0]


def _load(value: int) -> torch.Tensor:
    if value < 0:
        raise ValueError(f"value {value} is corrupt")
    return torch.full((1, 2, 2), float(value))


class _FileWriter:
    """A writer that names one output per input file, as SaveLikeInput does."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def output_path(self, source: str) -> Path:
        return self.folder / f"{Path(source).stem}.out"


def _evaluate(
    loader: InferenceDataLoader, output_dir: Path, postprocessing: object = None
) -> tuple[list[float], BaseException | None]:
    """Runs ``loader`` through a MONAI evaluator with ``run_inference``: the values predicted and what it raised."""
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=loader,
        network=torch.nn.Identity(),
        prepare_batch=lambda batch, device, non_blocking, **kwargs: (batch["value"], None),
        postprocessing=postprocessing,
    )
    seen: list[float] = []
    evaluator.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: seen.extend(o["pred"][0, 0, 0].item() for o in e.state.output)
    )
    try:
        run_inference(evaluator, output_dir)
    except UserError as error:
        return seen, error
    return seen, None


def _dataset(tmp_path: Path) -> Dataset:
    data = [{"image": str(tmp_path / "in" / f"{i}.png"), "value": v} for i, v in enumerate(VALUES)]
    return Dataset(data, Lambdad("value", _load))


@pytest.mark.parametrize(
    "batch_size, num_workers", [(1, 0), (2, 0), (3, 2)], ids=["batch1", "batch2", "batch3-workers"]
)
def test_every_good_input_is_predicted_and_the_bad_ones_listed(tmp_path, batch_size, num_workers):
    loader = InferenceDataLoader(_dataset(tmp_path), batch_size=batch_size, num_workers=num_workers)
    seen, error = _evaluate(loader, tmp_path / "out")
    assert seen == [1.0, 3.0, 6.0]  # the trailing failures (7, 8) end the epoch without a batch of their own
    failures = json.loads((tmp_path / "out" / "failures.json").read_text())
    assert [Path(f["file"]).name for f in failures] == BAD
    assert failures[0]["reason"] == "ValueError: value -1 is corrupt"
    assert str(error) == (
        f"6 of 9 inputs failed and have no prediction; {tmp_path / 'out' / 'failures.json'} lists them with the "
        "reasons (the other predictions are written)"
    )


def test_finished_inputs_are_skipped_unless_overwrite(tmp_path, caplog):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("0", "3"):
        (out / f"{name}.out").write_text("done")
    (out / "failures.json").write_text('[{"file": "stale"}]')
    good = Dataset([d for d in _dataset(tmp_path).data if d["value"] >= 0], Lambdad("value", _load))

    with caplog.at_level("INFO"):
        loader = InferenceDataLoader(good, writers=[_FileWriter(out)], batch_size=2)
    assert "2 of 3 inputs already have their outputs: skipped" in caplog.text
    assert _evaluate(loader, out) == ([6.0], None)
    assert json.loads((out / "failures.json").read_text()) == []  # the stale list is replaced

    loader = InferenceDataLoader(good, writers=[_FileWriter(out)], overwrite="true", batch_size=2)
    assert _evaluate(loader, out) == ([1.0, 3.0, 6.0], None)


def test_nothing_left_to_predict_runs_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "0.out").write_text("done")
    dataset = Dataset([{"image": "0.png", "value": 1}], Lambdad("value", _load))
    loader = InferenceDataLoader(dataset, writers=[_FileWriter(out)])
    assert len(loader) == 0
    assert _evaluate(loader, out) == ([], None)
    assert json.loads((out / "failures.json").read_text()) == []


def test_a_full_disk_ends_the_run_with_one_line(tmp_path):
    def full_disk(item: dict) -> dict:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "0.png"))

    loader = InferenceDataLoader(Dataset([{"image": "0.png", "value": 1}], Lambdad("value", _load)))
    _, error = _evaluate(loader, tmp_path / "out", postprocessing=full_disk)
    assert str(error).startswith(
        f"cannot write into {tmp_path / 'out'}: No space left on device ({tmp_path / 'out' / '0.png'}); the "
        "predictions written before are complete"
    )


def test_read_each_reads_the_preferred_extension_file_by_file(tmp_path):
    for name, text in [("a.csv", "1"), ("b.CSV", "x"), ("c.csv", "2"), ("d.fa", "9"), ("e.txt", "9")]:
        (tmp_path / name).write_text(text)

    def read(path: Path) -> list[dict]:
        return [{"id": path.stem, "value": int(path.read_text())}]

    items = read_each(read, tmp_path, (".csv",), (".fa",))
    assert items[:2] == [{"id": "a", "value": 1}, {"id": "c", "value": 2}]
    failure = items[2]["_medkit_failure"]
    assert failure["file"] == str(tmp_path / "b.CSV")
    assert failure["reason"] == "ValueError: invalid literal for int() with base 10: 'x'"
    assert read_each(read, tmp_path, (".fa",)) == [{"id": "d", "value": 9}]  # the first group with files
    # a file, or a folder without such files, goes to the reader whole (its own errors stay as they are)
    assert read_each(read, tmp_path / "a.csv", (".csv",)) == [{"id": "a", "value": 1}]
    with pytest.raises(IsADirectoryError):
        read_each(read, tmp_path, (".npz",))


def test_a_failed_listing_item_reaches_failures_json(tmp_path):
    (tmp_path / "bad.csv").write_text("")
    items = read_each(lambda path: [][0], tmp_path, (".csv",))
    loader = InferenceDataLoader(Dataset(items), writers=[_FileWriter(tmp_path)])
    _, error = _evaluate(loader, tmp_path / "out")
    assert "1 of 1 inputs failed" in str(error)
    failures = json.loads((tmp_path / "out" / "failures.json").read_text())
    assert failures == [{"file": str(tmp_path / "bad.csv"), "reason": "IndexError: list index out of range"}]


def test_csv_writer_keeps_the_rows_of_finished_inputs(tmp_path):
    path = tmp_path / "slide_predictions.csv"
    path.write_text("file,probability,predicted_label\na.png,0.100000,0\nb.png,0.900000,1\n")
    writer = PredictionCSVWriter(tmp_path, id_header="file")
    assert writer.finished({"id": "a.png", "source": "slide"})
    assert not writer.finished({"id": "c.png", "source": "slide"})
    assert not writer.finished({"id": "a.png", "source": "other"})
    writer._rows.append(("slide", "c.png", [0.75]))
    writer(engine=None)
    rows = list(csv.reader(path.open()))
    assert rows == [["file", "probability", "predicted_label"], ["a.png", "0.100000", "0"], ["c.png", "0.750000", "1"]]


def _fail_midway(self: Image.Image, fp: str | Path, *args: object, **kwargs: object) -> None:
    Path(fp).write_bytes(b"partial")
    raise OSError(errno.ENOSPC, "No space left on device")


class _BrokenCSV:
    def __init__(self, f: object) -> None:
        self.f = f

    def writerow(self, row: list) -> None:
        self.f.write("partial\n")

    def writerows(self, rows: list) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


def _mask(source: str) -> MetaTensor:
    return MetaTensor(torch.ones(1, 6, 4), meta={"filename_or_obj": source})


def _write_csv(out: Path) -> None:
    writer = PredictionCSVWriter(out)
    writer._rows.append(("case", "r1", [0.5]))
    writer(engine=None)


# each writer, the file it writes, and a call that writes it
WRITERS = {
    "SaveLikeInput": ("case.png", lambda out: SaveLikeInput(out)(_mask("/in/case.png"))),
    "AtomicSaveImaged": (
        "case_mask.png",
        lambda out: AtomicSaveImaged(
            "pred", output_dir=out, output_postfix="mask", output_ext=".png", separate_folder=False, print_log=False
        )({"pred": _mask("/in/case.tif")}),
    ),
    "SaveGreyLabel": ("case.png", lambda out: SaveGreyLabel(out, {"0": 0, "255": 1})(_mask("/in/case.jpg"))),
    "PredictionCSVWriter": ("case_predictions.csv", _write_csv),
    "SegmentationOverlaySaver": (
        "case_overlay.png",
        lambda out: SegmentationOverlaySaver(out)._save(np.zeros((4, 6, 3), np.uint8), _mask("/in/case.png"), "x"),
    ),
    "save_json": ("case.json", lambda out: save_json({"a": 1}, out / "case.json")),
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_a_write_that_fails_midway_leaves_the_old_file(tmp_path, monkeypatch, name):
    filename, write = WRITERS[name]
    write(tmp_path)
    old = (tmp_path / filename).read_bytes()
    assert old and old != b"partial"
    monkeypatch.setattr(Image.Image, "save", _fail_midway)
    monkeypatch.setattr(csv, "writer", _BrokenCSV)
    monkeypatch.setattr(Path, "write_text", lambda self, text: _fail_midway(None, self))
    with pytest.raises((OSError, RuntimeError)):
        write(tmp_path)
    assert (tmp_path / filename).read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == [filename]  # no temporary file left


def test_atomic_path_keeps_the_extension_and_renames_on_success(tmp_path):
    target = tmp_path / "sub" / "vol.nii.gz"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(TEMP_PREFIX) and tmp.name.endswith(".nii.gz")
        tmp.write_bytes(b"data")
        assert not target.exists()
    assert target.read_bytes() == b"data" and not tmp.exists()


def test_writers_name_their_outputs_without_creating_folders(tmp_path):
    out = tmp_path / "out"
    assert SaveLikeInput(out).output_path("/in/a.jpeg") == out / "a.png"  # lossy input, lossless mask
    assert SaveLikeInput(out).output_path("/in/v.nii.gz") == out / "v.nii.gz"
    saver = AtomicSaveImaged("pred", output_dir=out, output_postfix="prob", output_ext=".png", separate_folder=False)
    assert saver.saver.output_path("/in/a.tif") == out / "a_prob.png"
    assert not out.exists()
    with pytest.raises(ValueError, match="a.gif"):
        SaveLikeInput(out).output_path("/in/a.gif")
