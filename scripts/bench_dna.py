"""Benchmark the dna_binding bundle: training throughput (sequences/s) against a plain PyTorch loop.

The plain loop is the course's: every training sequence one-hot encoded once into one ``(N, L, 4)`` tensor, a
``TensorDataset`` with a shuffling ``DataLoader``, and ``zero_grad / forward / BCEWithLogits / backward / step``. The
bundle side runs ``train#trainer`` from ``bundles/dna_binding/configs/train.json`` (cached one-hot dataset, padding
collate, length-aware network call, ignite handlers). Both use the same network definition, loss, optimizer, batch
size and training split; validation is switched off on the bundle side so only training steps are timed.

Prints one JSON object. Examples (from the repo root)::

    python scripts/bench_dna.py
    python scripts/bench_dna.py --data $MEDKIT_REAL_DATA/dna_binding/chipseq_encode
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
from medkit.transforms import OneHotDNA

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundles" / "dna_binding" / "configs"
logger = logging.getLogger("bench_dna")


def _parser(data: Path, out: Path, overrides: dict) -> ConfigParser:
    return bundle_parser(BUNDLE / "train.json", data, out, overrides)


def bench_bundle(data: Path, out: Path, iterations: int, warmup: int, overrides: dict) -> float:
    """Seconds per training iteration of the bundle's own trainer, after ``warmup`` iterations."""
    return seconds_per_bundle_iteration(BUNDLE / "train.json", data, out, iterations, warmup, overrides)


def bench_plain(data: Path, out: Path, iterations: int, warmup: int, overrides: dict) -> float:
    """Seconds per iteration of a plain PyTorch loop over a pre-encoded tensor of the same training split."""
    parser = _parser(data, out, overrides)
    start_bundle_run(parser)
    device = parser.get_parsed_content("device")
    net = parser.get_parsed_content("network")
    loss_fn = parser.get_parsed_content("loss")
    opt = parser.get_parsed_content("optimizer")
    items = parser.get_parsed_content("datalists")["train"]
    encode = OneHotDNA()
    x = torch.stack([encode(item["sequence"]) for item in items])  # equal lengths: the course's fixed 101 bp
    y = torch.tensor([[float(item["label"])] for item in items])
    loader = DataLoader(TensorDataset(x, y), batch_size=parser.get_parsed_content("batch_size"), shuffle=True)
    net.train()
    stamps: list[float] = []
    while len(stamps) < iterations:
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            stamps.append(time.perf_counter())
            if len(stamps) >= iterations:
                break
    return (stamps[-1] - stamps[warmup - 1]) / (len(stamps) - warmup)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="sequence CSV/FASTA file or folder; default: generated synthetic data")
    ap.add_argument("--iterations", type=int, default=30, help="timed training iterations per measurement")
    ap.add_argument("--warmup", type=int, default=5, help="iterations excluded from timing")
    ap.add_argument("--repeats", type=int, default=3, help="alternating repeats of each loop (median reported)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON", help="config overrides, e.g. hidden_dim=32")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        data = args.data
        if data is None:
            from medkit.data.synthetic_dna import generate_dna_dataset

            data = generate_dna_dataset(tmp_path / "synthetic", num_sequences=12000, seed=0)
        bundle_s, plain_s = [], []
        for r in range(args.repeats):
            bundle_s.append(bench_bundle(data, tmp_path / f"b{r}", args.iterations, args.warmup, overrides))
            plain_s.append(bench_plain(data, tmp_path / f"p{r}", args.iterations, args.warmup, overrides))
        parser = _parser(data, tmp_path / "x", overrides)
        batch = parser.get_parsed_content("batch_size")
        bundle_sps = batch / statistics.median(bundle_s)
        plain_sps = batch / statistics.median(plain_s)
        result = {
            "data": str(args.data or "synthetic (12000 x 101 bp)"),
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "torch_threads": torch.get_num_threads(),
            "batch_size": batch,
            "hidden_dim": parser.get_parsed_content("hidden_dim"),
            "overrides": overrides,
            "bundle_ms_per_iteration": round(1000 * statistics.median(bundle_s), 1),
            "plain_loop_ms_per_iteration": round(1000 * statistics.median(plain_s), 1),
            "bundle_sequences_per_s": round(bundle_sps, 1),
            "plain_loop_sequences_per_s": round(plain_sps, 1),
            "ratio_bundle_vs_plain": round(bundle_sps / plain_sps, 3),
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
