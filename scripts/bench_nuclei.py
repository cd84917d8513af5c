"""Benchmark the nuclei_seg bundle: training throughput against a plain PyTorch loop and against compute only,
seconds per epoch, and (optionally) the test Dice reached within a time budget.

Three figures, measured in the same run on whatever device the bundle picks (CUDA when present, else the CPU):
``bundle`` runs ``train#trainer`` from ``bundles/nuclei_seg/configs/train.json``; ``plain_loop`` is a hand-written
loop with the same network, loss, optimizer, autocast, memory format, data loader and batch size; ``compute_only``
runs the trainer's own step on one fixed batch already on the device, showing what the data pipeline costs. On a
GPU, ``gpu_utilisation`` is sampled with ``nvidia-smi`` during the timed bundle iterations.

Prints one JSON object. Examples (from the repo root)::

    python scripts/bench_nuclei.py
    python scripts/bench_nuclei.py --iterations 12 --warmup 2 --repeats 2 --set spatial_size=[128,128]
    python scripts/bench_nuclei.py --data $MEDKIT_REAL_DATA/dsb2018_nuclei --iterations 60 --warmup 10 --repeats 2
    python scripts/bench_nuclei.py --data $MEDKIT_REAL_DATA/dsb2018_nuclei --set batch_size=16 num_workers=8
    python scripts/bench_nuclei.py --data $MEDKIT_REAL_DATA/dsb2018_nuclei --minutes 15
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

from ignite.engine import Events

from medkit.bench import (
    add_timing_arguments,
    bundle_parser,
    compare_throughput,
    scratch_folder,
    start_bundle_run,
    timing_options,
)

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundles" / "nuclei_seg" / "configs"
logger = logging.getLogger("bench_nuclei")


def seconds_per_epoch(data: Path, out: Path, overrides: dict) -> float:
    parser = bundle_parser(BUNDLE / "train.json", data, out, {**overrides, "epochs": 2})
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
    add_timing_arguments(ap, iterations=24, warmup=4, repeats=4)
    ap.add_argument("--minutes", type=float, help="also train the default config this long and report test Dice")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().setLevel(logging.WARNING)
    options = timing_options(args)

    with scratch_folder() as tmp:
        data = args.data
        if data is None:
            from medkit.data.synthetic_nuclei import generate_nuclei_dataset

            data = generate_nuclei_dataset(tmp / "synthetic", num_images=48, image_size=256, seed=0)
        result = {
            "data": str(args.data or "synthetic (48 x 256^2)"),
            **compare_throughput(BUNDLE / "train.json", data, tmp / "runs", **options),
            "seconds_per_epoch": round(seconds_per_epoch(data, tmp / "e", options["overrides"]), 2),
        }
        if args.minutes:
            result["dice_within_minutes"] = {"minutes": args.minutes, **dice_within(data, tmp / "m", args.minutes)}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
