"""Benchmark the pcam_transfer bundle: frozen-VGG16 head training throughput (images/s) against a plain PyTorch loop.

The plain loop is the course's: every training patch preprocessed once (the bundle's deterministic transforms) into
one tensor, a ``TensorDataset`` with a shuffling ``DataLoader``, and ``zero_grad / forward / BCEWithLogits / backward
/ step`` on the head's parameters. The bundle side runs ``train#trainer`` from
``bundles/pcam_transfer/configs/train.json`` (cached dataset, random flips and 90-degree turns, ignite handlers,
MONAI's ``SupervisedTrainer``). Both use the same network object definition (``VGGTransfer``, frozen part under
``torch.no_grad``, so no backward pass runs through VGG16), loss, optimizer, batch size, input size, numeric precision
(bf16 autocast on CPUs that have it, AMP on CUDA) and channels_last layout; validation is off on the bundle side and
both drop the last partial batch, so only full training steps are timed.

Prints one JSON object. Examples (from the repo root)::

    python scripts/bench_classification.py
    python scripts/bench_classification.py --spatial-size 96 --batch-size 16 --set cpu_bf16=false
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from monai.bundle import ConfigParser
from torch.utils.data import DataLoader, TensorDataset

from medkit.bench import bundle_parser, seconds_per_bundle_iteration, start_bundle_run

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "bundles" / "pcam_transfer" / "configs" / "train.json"
logger = logging.getLogger("bench_classification")


def _parser(data: Path, out: Path, overrides: dict) -> ConfigParser:
    return bundle_parser(TRAIN, data, out, overrides)


def bench_bundle(data: Path, out: Path, iterations: int, warmup: int, overrides: dict) -> float:
    """Seconds per training iteration of the bundle's own trainer, after ``warmup`` iterations."""
    return seconds_per_bundle_iteration(TRAIN, data, out, iterations, warmup, overrides)


def bench_plain(data: Path, out: Path, iterations: int, warmup: int, overrides: dict) -> float:
    """Seconds per iteration of a plain PyTorch loop over pre-processed tensors of the same training split."""
    parser = _parser(data, out, overrides)
    start_bundle_run(parser)
    device = parser.get_parsed_content("device")
    net = parser.get_parsed_content("network")
    loss_fn = parser.get_parsed_content("loss")
    opt = parser.get_parsed_content("optimizer")
    cpu_autocast = parser.get_parsed_content("inferer").enabled
    cuda_amp = bool(parser.get_parsed_content("amp")) and device.type == "cuda"
    preprocess = parser.get_parsed_content("validate#preprocessing")  # the deterministic transforms
    items = parser.get_parsed_content("datalists")["train"]
    x = torch.stack([torch.as_tensor(preprocess(dict(item))["image"]) for item in items])
    y = torch.tensor([[float(item["label"])] for item in items])
    batch_size = parser.get_parsed_content("batch_size")
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, drop_last=True)
    scaler = torch.amp.GradScaler("cuda", enabled=cuda_amp)
    net.train()
    stamps: list[float] = []
    while len(stamps) < iterations:
        for xb, yb in loader:
            xb = xb.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            yb = yb.to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.float16 if cuda_amp else torch.bfloat16,
                                enabled=cuda_amp or cpu_autocast):  # fmt: skip
                logits = net(xb)
            loss = loss_fn(logits.float(), yb)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            if device.type == "cuda":
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())
            if len(stamps) >= iterations:
                break
    return (stamps[-1] - stamps[warmup - 1]) / (len(stamps) - warmup)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="folder of T_*/N_* patches; default: generated synthetic patches")
    ap.add_argument("--num-patches", type=int, default=48, help="synthetic patches to generate when --data is unset")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--spatial-size", type=int, default=224, help="side of the network input")
    ap.add_argument("--iterations", type=int, default=8, help="training iterations per measurement")
    ap.add_argument("--warmup", type=int, default=2, help="iterations excluded from timing")
    ap.add_argument("--repeats", type=int, default=2, help="alternating repeats of each loop (median reported)")
    ap.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=JSON", help="config overrides, e.g. hidden_channels=512"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    overrides = {
        "weights": "none",  # speed does not depend on the weights' values; skip reading the 0.5 GB file
        "batch_size": args.batch_size,
        "spatial_size": [args.spatial_size, args.spatial_size],
        "train#dataloader#drop_last": True,
        **{k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)},
    }

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        data = args.data
        if data is None:
            from medkit.data.synthetic_pcam import generate_pcam_dataset

            data = generate_pcam_dataset(tmp_path / "synthetic", num_patches=args.num_patches, seed=0)
        bundle_s, plain_s = [], []
        for r in range(args.repeats):
            bundle_s.append(bench_bundle(data, tmp_path / f"b{r}", args.iterations, args.warmup, overrides))
            plain_s.append(bench_plain(data, tmp_path / f"p{r}", args.iterations, args.warmup, overrides))
        parser = _parser(data, tmp_path / "x", overrides)
        device = parser.get_parsed_content("device")
        bundle_ips = args.batch_size / statistics.median(bundle_s)
        plain_ips = args.batch_size / statistics.median(plain_s)
        result = {
            "data": str(args.data or f"synthetic ({args.num_patches} patches)"),
            "device": str(device),
            "torch_threads": torch.get_num_threads(),
            "batch_size": args.batch_size,
            "input_size": [3, args.spatial_size, args.spatial_size],
            "cpu_bf16_autocast": parser.get_parsed_content("inferer").enabled,
            "cuda_amp": bool(parser.get_parsed_content("amp")) and device.type == "cuda",
            "channels_last": True,
            "overrides": overrides,
            "timed_iterations": args.iterations - args.warmup,
            "repeats": args.repeats,
            "bundle_ms_per_iteration": round(1000 * statistics.median(bundle_s), 1),
            "plain_loop_ms_per_iteration": round(1000 * statistics.median(plain_s), 1),
            "bundle_images_per_s": round(bundle_ips, 2),
            "plain_loop_images_per_s": round(plain_ips, 2),
            "ratio_bundle_vs_plain": round(bundle_ips / plain_ips, 3),
            "target_ratio": 0.9,
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
