"""medkit.report and ``medkit report``: a real two-epoch nuclei_seg run, evaluated, leaves one page with every section;
``report.html`` is self-contained and renders in headless Chromium."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, bundle_layers, run_bundle_in_process
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from medkit.cli import main
from medkit.curves import read_scalars
from medkit.data.synthetic_nuclei import generate_nuclei_dataset
from medkit.report import CURVES_PNG, try_write_report, write_report

CONFIGS = REPO_ROOT / "bundles" / "nuclei_seg" / "configs"
# 7 training images, batch 2, last partial batch dropped: 3 iterations per epoch
TINY = ["--epochs", "2", "--batch_size", "2", "--spatial_size", "[64,64]", "--channels", "[4,8,16]"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DATA_PNG = "data:image/png;base64,"
# the second-level headings of every report, in order (docs/report.md)
SECTIONS = ["Summary", "Evaluation", "Training curves", "Figures", "Settings"]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> Path:
    """A nuclei_seg run trained for 2 epochs on generated images, then evaluated (which writes the report)."""
    root = tmp_path_factory.mktemp("report")
    data = generate_nuclei_dataset(root / "data", num_images=10, image_size=64, seed=0)
    run = root / "run"
    common = ["--dataset_dir", str(data), "--output_dir", str(run), *TINY]
    run_bundle_in_process("run", "--config_file", str(CONFIGS / "train.json"), *common)
    run_bundle_in_process("run", "--config_file", bundle_layers(CONFIGS, "train.json", "evaluate.json"), *common)
    return run


class _Page(HTMLParser):
    """Tags with their attributes, and the text of each h1/h2, of an HTML page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.headings: dict[str, list[str]] = {"h1": [], "h2": []}
        self._open: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._open = tag if tag in self.headings else None

    def handle_data(self, data: str) -> None:
        if self._open:
            self.headings[self._open].append(data.strip())

    def handle_endtag(self, tag: str) -> None:
        self._open = None


def _table_row(md: str, first_cell: str) -> list[str]:
    """The cells of the Markdown table row whose first cell is ``first_cell``."""
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{md}")


def test_evaluate_writes_the_report_at_its_end(evaluated):
    md = (evaluated / "report.md").read_text()
    assert re.findall(r"^## (.+)$", md, flags=re.M) == SECTIONS
    assert md.startswith(f"# Run report: {evaluated.parent.name}/run\n")
    assert (evaluated / "report.html").is_file() and (evaluated / CURVES_PNG).read_bytes()[:8] == PNG_MAGIC
    assert "run report written" in (evaluated / "eval" / "evaluate.log").read_text()


def test_summary_holds_the_best_and_final_values_of_the_events(evaluated):
    md = (evaluated / "report.md").read_text()
    summary = md.split("## Summary")[1].split("## ")[0]
    steps, dice = read_scalars(evaluated)["val_mean_dice"]
    best = int(np.argmax(dice))
    # the key metric (the one model.pt is kept by) comes first; per-iteration and lr scalars are curves only
    first_row = next(line for line in summary.splitlines() if line.startswith("| `"))
    assert first_row.startswith("| `val_mean_dice` (key metric, `model.pt`)")
    _, mode, best_value, best_epoch, final, final_epoch = _table_row(summary, first_row.split("|")[1].strip())
    assert (mode, best_epoch, final_epoch) == ("max", str(steps[best]), "2")
    assert float(best_value) == pytest.approx(dice[best], abs=5e-5)
    assert float(final) == pytest.approx(dice[-1], abs=5e-5)
    loss = read_scalars(evaluated)["train_loss_epoch"][1]
    mode, best_loss = _table_row(summary, "`train_loss_epoch`")[1:3]
    assert mode == "min" and float(best_loss) == pytest.approx(min(loss), abs=5e-5)
    assert "`train_loss`" not in summary and "`lr`" not in summary


def test_evaluation_tables_come_from_the_evaluate_outputs(evaluated):
    md = (evaluated / "report.md").read_text()
    evaluation = md.split("## Evaluation")[1].split("## Training curves")[0]
    metrics = json.loads((evaluated / "eval" / "metrics.json").read_text())
    for name, value in metrics["metrics"].items():
        assert float(_table_row(evaluation, f"`{name}`")[1]) == pytest.approx(value, abs=5e-5)
    assert _table_row(evaluation, "`num_images`") == ["`num_images`", "2"]
    assert _table_row(evaluation, "`split`") == ["`split`", "`test`"]
    assert "Summary over images, `eval/val_mean_dice_summary.csv`" in evaluation  # MONAI's MetricsSaver table
    assert "`eval/val_mean_dice_raw.csv`" in evaluation and "per_image" not in evaluation


def test_html_is_self_contained(evaluated):
    md = (evaluated / "report.md").read_text()
    page = _Page((evaluated / "report.html").read_text())
    images = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    assert len(images) == md.count("](") == 2  # the curves and eval/examples.png
    for src in images:
        assert src.startswith(DATA_PNG) and base64.b64decode(src[len(DATA_PNG) :])[:8] == PNG_MAGIC
    references = [v for _, attrs in page.tags for k, v in attrs.items() if k in ("src", "href")]
    assert not [v for v in references if re.match(r"(https?:)?//", v)]
    assert not [tag for tag, _ in page.tags if tag in ("script", "link", "iframe")]
    assert "url(" not in (evaluated / "report.html").read_text().split("</style>")[0]
    assert page.headings["h2"] == SECTIONS
    assert "![" in md and "eval/examples.png" in md  # the Markdown links its figures by relative path


def test_curves_put_loss_metrics_and_lr_on_one_epoch_axis(evaluated, tmp_path, figures):
    run = tmp_path / "copy"
    shutil.copytree(evaluated, run)
    write_report(run)
    (fig,) = figures
    loss, metrics, lr = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["loss", "metrics", "learning rate"]
    lines = {line.get_label(): list(line.get_xdata()) for line in loss.get_lines()}
    assert lines["train_loss_epoch"] == [1, 2]
    # 3 iterations per epoch: iteration k is drawn at epoch k / 3
    assert lines["train_loss (per iteration)"] == pytest.approx([k / 3 for k in range(1, 7)])
    assert {line.get_label() for line in metrics.get_lines()} == {"val_mean_dice", "val_mean_iou"}
    assert [line.get_label() for line in lr.get_lines()] == ["lr"]


def test_command_line_rewrites_the_report(evaluated, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(evaluated, run)
    (run / "report.html").unlink()
    assert main(["report", str(run)]) == 0
    assert capsys.readouterr().out.split() == [str(run / "report.md"), str(run / "report.html")]
    assert (run / "report.html").is_file()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing", "run folder .*missing does not exist"),
        (lambda p: p, "holds no TensorBoard events, run_settings.json or .*metrics.json: it is not a run folder"),
    ],
    ids=["missing", "not-a-run"],
)
def test_command_line_errors_are_one_line(tmp_path, capsys, make, message):
    assert main(["report", str(make(tmp_path))]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error:") and re.search(message, line)


def _fake_run(root: Path, overlays: int = 0) -> Path:
    """A run folder with two epochs of events and its settings, and ``overlays`` PNGs under eval/overlays/."""
    writer = SummaryWriter(log_dir=str(root))
    for epoch, (loss, dice) in enumerate([(0.9, 0.3), (0.5, 0.6)], 1):
        writer.add_scalar("train_loss_epoch", loss, epoch)
        writer.add_scalar("val_dice", dice, epoch)
    writer.close()
    (root / "run_settings.json").write_text(json.dumps({"epochs": 2, "loss_name": "dice"}))
    for i in range(overlays):
        (root / "eval" / "overlays").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8), 30 * i, np.uint8)).save(root / "eval" / "overlays" / f"case{i}_overlay.png")
    return root


def test_a_run_not_yet_evaluated_gets_curves_and_settings(tmp_path):
    md = write_report(_fake_run(tmp_path))[0].read_text()
    assert re.findall(r"^## (.+)$", md, flags=re.M) == SECTIONS
    assert "No `eval/metrics.json` yet" in md and "The evaluation wrote no figures." in md
    # the key metric first, although the run logged train_loss_epoch first
    first_row = next(line for line in md.split("## Summary")[1].splitlines() if line.startswith("| `"))
    assert first_row.startswith("| `val_dice` (key metric, `model.pt`) | max | 0.6000 | 2 |")
    assert _table_row(md, "`loss_name`") == ["`loss_name`", '`"dice"`']


def test_overlays_are_capped_per_folder(tmp_path):
    md = write_report(_fake_run(tmp_path, overlays=8))[0].read_text()
    shown = re.findall(r"!\[[^]]*\]\((eval/overlays/[^)]+)\)", md)
    assert shown == [f"eval/overlays/case{i}_overlay.png" for i in range(6)]
    assert "... and 2 more in `eval/overlays`." in md


def test_a_report_problem_is_a_warning_at_the_end_of_evaluation(tmp_path, caplog):
    run = _fake_run(tmp_path)
    (run / "eval").mkdir()
    (run / "eval" / "metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"metrics.json is not valid JSON"):
        write_report(run)
    assert try_write_report(run, run / "eval") is None
    assert "run report not written" in caplog.text and f"medkit report {run}" in caplog.text
    assert not (run / "report.html").exists()


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary (apt-get install chromium; .ci/run installs it)")
def test_report_renders_in_headless_chromium(evaluated, tmp_path):
    url = (evaluated / "report.html").resolve().as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'p'}"]
    shot = tmp_path / "shot.png"
    subprocess.run(
        [_chromium(), *flags, f"--screenshot={shot}", "--window-size=1200,2000", url],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.shape == (2000, 1200)
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.02  # text, tables and figures, not a blank page
    dom = subprocess.run(
        [_chromium(), *flags, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    page = _Page(dom)
    assert page.headings["h2"] == SECTIONS
    assert sum(tag == "img" for tag, _ in page.tags) == 2
