"""medkit.sweep: grid, naming, value quoting, commands, running, summaries; and a real 2x2 nuclei_seg sweep."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from fire.parser import DefaultParseValue
from torch.utils.tensorboard import SummaryWriter

from medkit.cli import main
from medkit.data.synthetic_nuclei import generate_nuclei_dataset
from medkit.sweep import (
    STATUS_FILE,
    Variant,
    available_cpus,
    build_command,
    cli_literal,
    expand_grid,
    parallel_env,
    parse_set,
    parse_value,
    plan_sweep,
    read_status,
    report_sweep,
    resolve_configs,
    run_sweep,
    run_variant,
    split_values,
    summarize,
    variant_name,
    write_summary,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1e-3,1e-4", ["1e-3", "1e-4"]),
        ("[4,8],[8,16]", ["[4,8]", "[8,16]"]),
        ("'a,b', c", ["'a,b'", "c"]),
        ("{'x': [1, 2]},null", ["{'x': [1, 2]}", "null"]),
        ("dice", ["dice"]),
    ],
    ids=["numbers", "lists", "quoted-comma", "dict", "one"],
)
def test_split_values(text, expected):
    assert split_values(text) == expected


@pytest.mark.parametrize("text", ["[4,8", "a,,b", "'a", "a,"], ids=["open-bracket", "empty", "open-quote", "trailing"])
def test_split_values_rejects_malformed(text):
    with pytest.raises(ValueError, match="cannot split"):
        split_values(text)


def test_parse_set():
    assert parse_set("optimizer#lr=1e-3,1e-4") == ("optimizer#lr", ["1e-3", "1e-4"])
    assert parse_set("channels=[4,8],[8,16]") == ("channels", ["[4,8]", "[8,16]"])
    for bad in ("lr", "=1", "lr="):
        with pytest.raises(ValueError, match="KEY=V1"):
            parse_set(bad)


def test_expand_grid_is_the_cartesian_product_first_key_slowest():
    grid = expand_grid([("a", ["1", "2"]), ("b", ["x", "y", "z"])])
    assert len(grid) == 6
    assert grid[:4] == [{"a": "1", "b": "x"}, {"a": "1", "b": "y"}, {"a": "1", "b": "z"}, {"a": "2", "b": "x"}]
    assert expand_grid({}) == [{}]
    with pytest.raises(ValueError, match="set twice"):
        expand_grid([("a", ["1"]), ("a", ["2"])])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("true", True),
        ("false", False),
        ("null", None),
        ("1e-3", 0.001),
        ("3", 3),
        ("[4,8]", [4, 8]),
        ("[true, 4]", [True, 4]),
        ("dice", "dice"),
        ("'a,b'", "a,b"),
        ("$@learning_rate * 10", "$@learning_rate * 10"),
        ("@other", "@other"),
        ("0.5x", "0.5x"),
    ],
    ids=["true", "false", "null", "float", "int", "list", "mixed-list", "word", "quoted", "expr", "ref", "not-number"],
)
def test_values_reach_the_bundle_with_their_type(text, expected):
    """What monai.bundle's command line (python-fire) reads from the argument we pass is the value the user meant.

    fire alone would pass ``--flag true`` on as the (truthy) string "true"; cli_literal is why it arrives as True.
    """
    value = parse_value(text)
    assert value == expected and type(value) is type(expected)
    parsed = DefaultParseValue(cli_literal(value))
    assert parsed == expected and type(parsed) is type(expected)


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (
            {"optimizer#lr": "1e-3", "network_def#skip_connections": "false"},
            "optimizer.lr=1e-3__network_def.skip_connections=false",
        ),
        ({"channels": "[4,8]"}, "channels=4-8"),
        ({"x": "-1"}, "x=-1"),
        ({"dataset_dir": "/data/a b"}, "dataset_dir=data-a-b"),
        ({"lr": "$@a == 'b'"}, "lr=a-b"),
        ({}, "base"),
    ],
    ids=["nested", "list", "negative", "path", "expr", "empty"],
)
def test_variant_name(overrides, expected):
    assert variant_name(overrides) == expected


def test_long_variant_names_are_cut_and_stay_unique():
    a = variant_name({"k": "x" * 300 + "a"})
    b = variant_name({"k": "x" * 300 + "b"})
    assert len(a) == len(b) == 120 and a != b


def test_build_command_layers_overrides_and_extras():
    cmd = build_command(["c/train.json"], "runs/b/s/v", {"network_def#skip_connections": "false", "lr": "1e-3"})
    assert cmd[1:] == [
        "-m", "monai.bundle", "run", "--config_file", "c/train.json",
        "--network_def#skip_connections", "False", "--lr", "0.001", "--output_dir", "runs/b/s/v",
    ]  # fmt: skip
    layered = build_command(["c/train.json", "c/x.json"], "o", {}, extra_args=["--epochs", "1"], python="py")
    assert layered == ["py", "-m", "monai.bundle", "run", "--config_file", "['c/train.json','c/x.json']",
                       "--epochs", "1", "--output_dir", "o"]  # fmt: skip
    assert DefaultParseValue(layered[5]) == ["c/train.json", "c/x.json"]


def test_resolve_configs(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO_ROOT)
    name, files = resolve_configs("nuclei_seg", ["train.json", "evaluate.json"])
    assert name == "nuclei_seg" and files == [Path("bundles/nuclei_seg/configs/train.json"), files[1]]
    assert files[1].name == "evaluate.json" and files[1].is_file()
    assert resolve_configs(REPO_ROOT / "bundles" / "nuclei_seg")[0] == "nuclei_seg"
    with pytest.raises(FileNotFoundError, match="no bundle"):
        resolve_configs("no_such_bundle")
    with pytest.raises(FileNotFoundError, match="nope.json"):
        resolve_configs("nuclei_seg", ["nope.json"])


def test_plan_sweep_folders(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO_ROOT)
    sweep_dir, variants = plan_sweep("nuclei_seg", "s1", [("loss_name", ["x/y", "x y"])], runs_root=tmp_path)
    assert sweep_dir == tmp_path / "nuclei_seg" / "s1"
    assert [v.name for v in variants] == ["loss_name=x-y", "loss_name=x-y__1"]  # same sanitised name: made unique
    assert variants[0].command[-2:] == ["--output_dir", str(sweep_dir / "loss_name=x-y")]
    with pytest.raises(ValueError, match="sweep name"):
        plan_sweep("nuclei_seg", "a/b", [], runs_root=tmp_path)


def test_plan_sweep_refuses_unknown_keys_before_any_run(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO_ROOT)
    with pytest.raises(ValueError, match=r"unknown override --learning_rat: did you mean --learning_rate\?"):
        plan_sweep("nuclei_seg", "s", [("learning_rat", ["1e-3"])], runs_root=tmp_path)
    with pytest.raises(ValueError, match=r"unknown override --epoch: did you mean --epochs\?"):
        plan_sweep("nuclei_seg", "s", [("seed", ["0"])], runs_root=tmp_path, extra_args=["--epoch", "2"])
    plan_sweep("nuclei_seg", "s", [("network_def#channels", ["[4,8]"])], runs_root=tmp_path, extra_args=["--epochs=2"])
    assert not tmp_path.joinpath("nuclei_seg").exists()


def _variant(tmp_path: Path, name: str, code: str) -> Variant:
    return Variant(name, {"k": name}, tmp_path / name, [sys.executable, "-c", code])


def test_run_variant_records_ok_failure_and_timeout(tmp_path):
    ok = run_variant(_variant(tmp_path, "ok", "print('hello')"))
    assert ok["status"] == "ok" and ok["returncode"] == 0 and "log_tail" not in ok
    assert "hello" in (tmp_path / "ok" / "sweep.log").read_text()
    bad = run_variant(_variant(tmp_path, "bad", "import sys; print('boom'); sys.exit(3)"))
    assert bad["status"] == "failed" and bad["returncode"] == 3 and "boom" in bad["log_tail"]
    assert read_status(tmp_path / "bad") == json.loads((tmp_path / "bad" / STATUS_FILE).read_text()) == bad
    slow = run_variant(_variant(tmp_path, "slow", "import time; time.sleep(60)"), timeout_s=1)
    assert slow["status"] == "timeout" and slow["returncode"] != 0 and slow["wall_s"] < 60


def test_run_sweep_skips_ok_and_retries_failed(tmp_path):
    done = _variant(tmp_path, "done", "import sys; sys.exit(1)")  # would fail if it ran again
    run_variant(_variant(tmp_path, "done", "pass"))
    failed = _variant(tmp_path, "failed", "pass")
    (tmp_path / "failed").mkdir()
    (tmp_path / "failed" / STATUS_FILE).write_text(json.dumps({"status": "failed"}))
    fresh = _variant(tmp_path, "fresh", "pass")
    planned = run_sweep([done, failed, fresh], dry_run=True)
    assert planned[0]["status"] == "ok" and planned[1:] == [None, None] and not fresh.output_dir.exists()
    results = run_sweep([done, failed, fresh], max_parallel=2)
    assert [r["status"] for r in results] == ["ok", "ok", "ok"]
    assert results[0]["command"][-1] == "pass"  # the recorded run, not a new one


@pytest.mark.parametrize(("max_parallel", "cpus", "threads"), [(2, 2, "1"), (3, 8, "2"), (4, 2, "1"), (2, 16, "8")])
def test_parallel_env_splits_the_cpus(max_parallel, cpus, threads):
    env = parallel_env(max_parallel, cpus=cpus, environ={"PATH": "/bin"})
    assert env == {"PATH": "/bin", "OMP_NUM_THREADS": threads}


def test_parallel_env_keeps_the_users_choice_and_serial_runs():
    assert parallel_env(2, cpus=8, environ={"OMP_NUM_THREADS": "3"}) is None
    assert parallel_env(1, cpus=8, environ={}) is None
    assert available_cpus() >= 1


def test_run_sweep_gives_parallel_runs_their_share_of_threads(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    code = "import os, torch; print('threads', os.environ.get('OMP_NUM_THREADS'), torch.get_num_threads())"
    variants = [_variant(tmp_path, name, code) for name in ("a", "b")]
    assert [r["status"] for r in run_sweep(variants, max_parallel=2)] == ["ok", "ok"]
    share = max(1, available_cpus() // 2)
    for name in ("a", "b"):
        assert f"threads {share} {share}" in (tmp_path / name / "sweep.log").read_text()


def _events(run_dir: Path, tags: dict[str, list[float]], start: int = 1) -> None:
    writer = SummaryWriter(log_dir=str(run_dir))
    for tag, values in tags.items():
        for step, value in enumerate(values, start):
            writer.add_scalar(tag, value, step)
    writer.close()


def test_summarize_ranks_by_best_of_the_first_val_tag(tmp_path):
    # val_z is written first, as a MONAI evaluator writes its key metric first: it is the default metric.
    # a peaks higher (0.7) but ends lower (0.4) than b (best = final = 0.6): ranked by best a leads, by final b would
    _events(tmp_path / "a", {"val_z": [0.2, 0.7, 0.4], "val_a": [0.1, 0.1, 0.1], "train_loss": [3.0, 1.0, 2.0]})
    _events(tmp_path / "b", {"val_z": [0.1, 0.3, 0.6], "val_a": [0.9, 0.9, 0.9], "train_loss": [3.0, 1.5, 1.4]})
    variants = [Variant(n, {"lr": n}, tmp_path / n) for n in ("a", "b", "c")]
    statuses = [{"status": "ok", "wall_s": 1.5}, {"status": "ok", "wall_s": 2.0}, {"status": "failed", "wall_s": 0.1}]
    rows, metric = summarize(variants, statuses)
    assert metric == "val_z"
    assert [r["variant"] for r in rows] == ["a", "b", "c"]
    assert rows[0] == {"variant": "a", "lr": "a", "status": "ok", "epochs": 3, "best": pytest.approx(0.7),
                       "best_epoch": 2, "final": pytest.approx(0.4), "wall_s": 1.5}  # fmt: skip
    assert rows[2]["best"] is None and rows[2]["status"] == "failed"
    # loss tags rank lowest first: a's lowest loss (1.0, epoch 2) beats b's (1.4), though a ends higher (2.0 > 1.4)
    loss_rows, tag = summarize(variants, statuses, metric="train_loss")
    assert tag == "train_loss" and [r["variant"] for r in loss_rows] == ["a", "b", "c"]
    assert loss_rows[0]["best"] == 1.0 and loss_rows[0]["best_epoch"] == 2 and loss_rows[0]["final"] == 2.0
    # an explicit val tag where b leads on every epoch
    val_a_rows, _ = summarize(variants, statuses, metric="val_a")
    assert [r["variant"] for r in val_a_rows] == ["b", "a", "c"]


def test_write_summary_csv_and_markdown(tmp_path):
    rows = [
        {"variant": "v1", "lr": "1e-3", "status": "ok", "epochs": 2, "best": 0.75, "best_epoch": 1, "final": 0.5,
         "wall_s": 12.345},
        {"variant": "v2", "lr": "1", "status": "failed", "epochs": None, "best": None, "best_epoch": None,
         "final": None, "wall_s": 1.0},
    ]  # fmt: skip
    csv_path, md_path = write_summary(rows, tmp_path / "s", "val_dice", {"v2": "line 1\nKeyError: 'bogus'"})
    with open(csv_path) as f:
        table = list(csv.reader(f))
    assert table[0] == ["variant", "lr", "status", "epochs", "best_val_dice", "best_epoch", "final_val_dice", "wall_s"]
    assert table[1] == ["v1", "1e-3", "ok", "2", "0.7500", "1", "0.5000", "12.3"]
    assert table[2] == ["v2", "1", "failed", "", "", "", "", "1.0"]
    md = md_path.read_text()
    assert "| v1 | 1e-3 | ok | 2 | 0.7500 | 1 | 0.5000 | 12.3 |" in md
    assert "## v2 failed" in md and "KeyError: 'bogus'" in md


def test_cli_dry_run_prints_plan_and_runs_nothing(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(REPO_ROOT)
    argv = ["sweep", "nuclei_seg", "--name", "dry", "--runs-root", str(tmp_path), "--dry-run",
            "--set", "network_def#skip_connections=true,false", "--", "--epochs", "1"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2 variants" in out and out.count("monai.bundle run") == 2
    assert "--epochs 1 '--network_def#skip_connections' False --output_dir" in out
    assert not (tmp_path / "nuclei_seg").exists()


def test_cli_rejects_passthrough_for_other_commands(tmp_path):
    with pytest.raises(SystemExit):
        main(["data", "synth", "nuclei", str(tmp_path), "--", "--epochs", "1"])


def test_sweep_of_real_bundle_runs_with_one_failure(monkeypatch, tmp_path, capsys):
    """A 2x2 grid of tiny nuclei_seg runs; the (dice_ce, expression) cell divides by zero on purpose."""
    data = generate_nuclei_dataset(tmp_path / "data", num_images=6, image_size=48, seed=0)
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    argv = ["sweep", "nuclei_seg", "--name", "acc", "--runs-root", str(tmp_path / "runs"),
            "--set", "loss_name=dice,dice_ce", "--set", "learning_rate=1e-3,$1e-2 if @loss_name == 'dice' else 1/0",
            "--", "--dataset_dir", str(data), "--epochs", "1", "--batch_size", "2", "--spatial_size", "[48,48]",
            "--channels", "[4,8]", "--num_workers", "0"]  # fmt: skip
    assert main(argv) == 3  # not every variant ok
    sweep = tmp_path / "runs" / "nuclei_seg" / "acc"
    bad = "loss_name=dice_ce__learning_rate=1e-2-if-loss_name-dice-else-1-0"
    good = ["loss_name=dice__learning_rate=1e-3", "loss_name=dice__learning_rate=1e-2-if-loss_name-dice-else-1-0",
            "loss_name=dice_ce__learning_rate=1e-3"]  # fmt: skip
    statuses = {name: read_status(sweep / name) for name in [*good, bad]}
    assert [statuses[n]["status"] for n in good] == ["ok"] * 3
    assert statuses[bad]["status"] == "failed" and statuses[bad]["returncode"] != 0
    assert "1/0" in statuses[bad]["log_tail"]
    assert statuses[good[0]]["overrides"] == {"loss_name": "dice", "learning_rate": "1e-3"}
    assert json.loads((sweep / good[1] / "run_settings.json").read_text())["learning_rate"] == 0.01

    with open(sweep / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["variant"] for r in rows][-1] == bad and len(rows) == 4
    assert [r["status"] for r in rows] == ["ok", "ok", "ok", "failed"]
    for row in rows[:3]:
        assert row["epochs"] == "1" and row["best_epoch"] == "1" and 0.0 <= float(row["best_val_mean_dice"]) <= 1.0
    assert rows[3]["best_val_mean_dice"] == ""
    md = (sweep / "summary.md").read_text()
    assert md.count("| ok |") == 3 and f"## {bad} failed" in md
    assert (sweep / "curves.png").read_bytes()[:8] == PNG_MAGIC

    before = {n: os.path.getmtime(sweep / n / STATUS_FILE) for n in good}
    capsys.readouterr()
    assert main(argv) == 3
    assert {n: os.path.getmtime(sweep / n / STATUS_FILE) for n in good} == before  # ok variants skipped
    assert read_status(sweep / bad)["status"] == "failed"  # the failed one was retried


def test_report_sweep_groups_curves_by_a_key(tmp_path):
    variants, statuses = [], []
    for loss in ("dice", "ce"):
        for seed in range(3):
            v = Variant(f"loss={loss}__seed={seed}", {"loss": loss, "seed": str(seed)}, tmp_path / f"{loss}{seed}")
            _events(v.output_dir, {"val_dice": [0.1 * seed, 0.2 * seed + 0.1], "train_loss": [1.0, 0.5 - 0.1 * seed]})
            variants.append(v)
            statuses.append({"status": "ok", "wall_s": 1.0})
    variants.append(Variant("loss=ce__seed=9", {"loss": "ce", "seed": "9"}, tmp_path / "x"))
    statuses.append({"status": "failed", "wall_s": 0.5, "log_tail": "Traceback\nValueError: bad"})
    rows = report_sweep(tmp_path / "s", variants, statuses, curve_tag="train_loss", group_by="loss")
    assert rows[0]["variant"] == "loss=dice__seed=2" and rows[-1]["status"] == "failed"
    assert (tmp_path / "s" / "curves.png").read_bytes()[:8] == PNG_MAGIC
    assert "ValueError: bad" in (tmp_path / "s" / "summary.md").read_text()


def test_overrides_reach_monai_bundle_with_their_type(tmp_path):
    """One real ``monai.bundle run``: a nested bool, a float, a list and a word arrive as the user meant them."""
    config = {
        "imports": ["$import json"],
        "output_dir": "",
        "net": {"skip": True, "lr": 0.1},
        "channels": [1],
        "name": "x",
        "run": ["$open(@output_dir + '/got.json', 'w').write(json.dumps([@net#skip, @net#lr, @channels, @name]))"],
    }
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(config))
    overrides = {"net#skip": "false", "net#lr": "1e-3", "channels": "[4,8]", "name": "dice"}
    variant = Variant("v", overrides, tmp_path / "v", build_command([cfg], tmp_path / "v", overrides))
    assert run_variant(variant)["status"] == "ok", (tmp_path / "v" / "sweep.log").read_text()[-2000:]
    assert json.loads((tmp_path / "v" / "got.json").read_text()) == [False, 0.001, [4, 8], "dice"]
