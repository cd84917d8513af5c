"""Benchmark the nuclei_seg bundle: training throughput against a plain PyTorch loop, seconds per epoch, and
(optionally) the test Dice reached within a CPU time budget.

Both loops use the same network definition, loss, optimizer, autocast setting, memory format, dataset object and
batch size, built from ``bundles/nuclei_seg/configs/train.json``; only the engine differs. A third figure,
``compute_only``, runs the same step on one fixed in-memory batch, showing what the data pipeline costs.

Prints one JSON object. Examples (from the repo root)::

    python scripts/bench_nuclei.py
    python scripts/bench_nuclei.py --data $MEDKIT_REAL_DATA/dsb2018_nuclei --minutes 15
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from ignite.engine import Events
from monai.bundle import ConfigParser

from medkit.bench import bundle_parser, seconds_per_bundle_iteration, start_bundle_run

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundles" / "nuclei_seg" / "configs"
logger = logging.getLogger("bench_nuclei")


def _parser(data: Path, out: Path, overrides: dict) -> ConfigParser:
    return bundle_parser(BUNDLE / "train.json", data, out, overrides)


def _time_iterations(step, batches, warmup: int) -> float:
    """Seconds per iteration after ``warmup`` iterations; ``step`` runs one iteration on a batch."""
    stamps = []
    for batch in batches:
        step(batch)
        stamps.append(time.perf_counter())
    return (stamps[-1] - stamps[warmup - 1]) / (len(stamps) - warmup)


def bench_bundle(data: Path, out: Path, iterations: int, warmup: int, overrides: dict) -> float:
    """Seconds per training iteration of the bundle's own trainer, after ``warmup`` iterations."""
    return seconds_per_bundle_iteration(BUNDLE / "train.json", data, out, iterations, warmup, overrides)


def bench_plain(data: Path, out: Path, iterations: int, warmup: int, overrides: dict, fixed: bool) -> float:
    parser = _parser(data, out, overrides)
    start_bundle_run(parser)
    device = parser.get_parsed_content("device")
    net = parser.get_parsed_content("network")
    loss_fn = parser.get_parsed_content("loss")
    opt = parser.get_parsed_content("optimizer")
    inferer = parser.get_parsed_content("inferer")
    loader = parser.get_parsed_content("train#dataloader")
    fmt = torch.channels_last
    net.train()

    def step(batch):
        x = torch.as_tensor(batch["image"]).to(device, memory_format=fmt, non_blocking=True)
        y = torch.as_tensor(batch["label"]).to(device, memory_format=fmt, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(inferer(x, net), y)
        loss.backward()
        opt.step()

    def batches():
        n = 0
        while True:
            for batch in loader:
                yield batch
                n += 1
                if n >= iterations:
                    return

    if fixed:
        first = next(iter(loader))
        return _time_iterations(step, (first for _ in range(iterations)), warmup)
    return _time_iterations(step, batches(), warmup)


def seconds_per_epoch(data: Path, out: Path, overrides: dict) -> float:
    parser = _parser(data, out, {**overrides, "epochs": 2})
    start_bundle_run(parser)
    trainer = parser.get_parsed_content("train#trainer")
    starts: dict[int, float] = {}
    ends: dict[int, float] = {}
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: starts.__setitem__(e.state.epoch, time.perf_counter()))
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: ends.__setitem__(e.state.epoch, time.perf_counter()))
    trainer.run()
    return ends[2] - starts[2]  # the second epoch: no first-call warm-up, validation included


def dice_within(data: Path, out: Path, minutes: float) -> dict:
    """Runs the bundle's default train command under a time limit, then its evaluate layer; returns its metrics."""
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file"]
    args = ["--dataset_dir", str(data), "--output_dir", str(out)]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "bench_train.log", "w") as log:  # keep the runs' logs out of the JSON on stdout
        start = time.perf_counter()
        train = [*cmd, str(BUNDLE / "train.json"), *args, "--max_minutes", str(minutes)]
        subprocess.run(train, check=True, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        train_s = time.perf_counter() - start
        layers = f"['{BUNDLE / 'train.json'}','{BUNDLE / 'evaluate.json'}']"
        subprocess.run([*cmd, layers, *args], check=True, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    return {"train_wall_s": round(train_s, 1), "test": metrics["metrics"], "num_test_images": metrics["num_images"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="nuclei dataset (DSB2018 layout); default: generated synthetic data")
    ap.add_argument("--iterations", type=int, default=24, help="timed training iterations per measurement")
    ap.add_argument("--warmup", type=int, default=4, help="iterations excluded from timing")
    ap.add_argument("--repeats", type=int, default=4, help="alternating repeats of each loop (median reported)")
    ap.add_argument("--minutes", type=float, help="also train the default config this long and report test Dice")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON", help="config overrides, e.g. cpu_bf16=false")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().setLevel(logging.WARNING)
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}

    # engine handlers log progress to stdout: send it to stderr so stdout carries only the JSON
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        tmp_path = Path(tmp)
        data = args.data
        if data is None:
            from medkit.data.synthetic_nuclei import generate_nuclei_dataset

            data = tmp_path / "synthetic"
            generate_nuclei_dataset(data, num_images=48, image_size=256, seed=0)
        bundle_s, plain_s, fixed_s = [], [], []
        it, warm = args.iterations, args.warmup
        for r in range(args.repeats):  # alternate which loop goes first, so drift and warm-up favour neither
            order = ("bundle", "plain") if r % 2 == 0 else ("plain", "bundle")
            for which in order:
                if which == "bundle":
                    bundle_s.append(bench_bundle(data, tmp_path / f"b{r}", it, warm, overrides))
                else:
                    plain_s.append(bench_plain(data, tmp_path / f"p{r}", it, warm, overrides, False))
        fixed_s.append(bench_plain(data, tmp_path / "f", it, warm, overrides, True))
        batch = _parser(data, tmp_path / "x", overrides).get_parsed_content("batch_size")
        bundle_ips = batch / statistics.median(bundle_s)
        plain_ips = batch / statistics.median(plain_s)
        result = {
            "data": str(args.data or "synthetic (48 x 256^2)"),
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "torch_threads": torch.get_num_threads(),
            "batch_size": batch,
            "overrides": overrides,
            "repeats": args.repeats,
            "bundle_images_per_s_each": [round(batch / t, 3) for t in bundle_s],
            "plain_loop_images_per_s_each": [round(batch / t, 3) for t in plain_s],
            "bundle_images_per_s": round(bundle_ips, 3),
            "plain_loop_images_per_s": round(plain_ips, 3),
            "ratio_bundle_vs_plain": round(bundle_ips / plain_ips, 3),
            "compute_only_images_per_s": round(batch / fixed_s[0], 3),
            "ratio_bundle_vs_compute_only": round(bundle_ips * fixed_s[0] / batch, 3),
            "seconds_per_epoch": round(seconds_per_epoch(data, tmp_path / "e", overrides), 2),
        }
        if args.minutes:
            result["dice_within_minutes"] = {"minutes": args.minutes, **dice_within(data, tmp_path / "m", args.minutes)}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
