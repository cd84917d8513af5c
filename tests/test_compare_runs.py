"""scripts/compare_runs.py on TensorBoard event files written by the test itself."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

REPO_ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("compare_runs", REPO_ROOT / "scripts" / "compare_runs.py")
compare_runs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare_runs)


def _write_run(path: Path, scale: float) -> Path:
    writer = SummaryWriter(log_dir=str(path))
    for it in range(1, 7):
        writer.add_scalar("train_loss", scale / it, it)
    for epoch in range(1, 4):
        writer.add_scalar("val_auc", 0.5 + 0.1 * epoch * scale, epoch)
        writer.add_scalar("loss/train", scale / epoch, epoch)
        writer.add_scalar("loss/validation", 1.2 * scale / epoch, epoch)
    writer.close()
    return path


def test_reads_scalars_and_draws_one_png(tmp_path):
    a, b = _write_run(tmp_path / "a", 1.0), _write_run(tmp_path / "b", 0.5)
    scalars = compare_runs.read_scalars(a)
    assert scalars["val_auc"][0] == [1, 2, 3]
    assert scalars["train_loss"][1][0] == pytest.approx(1.0)
    assert compare_runs._panels(set(scalars)) == {
        "loss": ["loss/train", "loss/validation"],  # training and validation overlaid in one panel
        "train_loss": ["train_loss"],
        "val_auc": ["val_auc"],
    }
    out = tmp_path / "cmp.png"
    compare_runs.main([str(a), str(b), "--output", str(out), "--labels", "mobilenet", "mlp"])
    with Image.open(out) as im:
        assert im.size[0] > 2 * im.size[1] > 200  # three panels side by side


def test_a_rerun_into_the_same_folder_replaces_repeated_steps(tmp_path):
    _write_run(tmp_path / "a", 1.0)
    _write_run(tmp_path / "a", 0.5)  # a second event file with the same steps
    steps, values = compare_runs.read_scalars(tmp_path / "a")["val_auc"]
    assert steps == [1, 2, 3] and values == pytest.approx([0.55, 0.6, 0.65])


def test_missing_events_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no TensorBoard event files"):
        compare_runs.read_scalars(tmp_path)


def test_panels_are_chosen_in_order_under_a_title(tmp_path, monkeypatch):
    import matplotlib.figure

    a, b = _write_run(tmp_path / "a", 1.0), _write_run(tmp_path / "b", 0.5)
    drawn = []
    save = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(
        matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: (drawn.append(fig), save(fig, *a, **k))
    )
    out = tmp_path / "cmp.png"
    compare_runs.main([str(a), str(b), "--output", str(out), "--panels", "val_auc", "loss", "--title", "breastmnist"])
    (fig,) = drawn
    assert [ax.get_title() for ax in fig.axes] == ["val_auc", "loss"]
    assert fig.get_suptitle() == "breastmnist"
    assert [line.get_label() for line in fig.axes[1].lines] == ["a train", "a validation", "b train", "b validation"]
    with pytest.raises(
        ValueError, match=r"no panel \['val_dice'\] in these runs; they have \['loss', 'train_loss', 'val_auc'\]"
    ):
        compare_runs.compare_runs([a, b], out, panels=["val_dice"])
