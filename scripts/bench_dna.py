"""Benchmark the dna_binding bundle: training throughput (sequences/s) against a plain PyTorch loop and against
compute only.

The plain loop is the course's: every training sequence one-hot encoded once into one ``(N, L, 4)`` tensor, a
``TensorDataset`` with a shuffling ``DataLoader``, and ``zero_grad / forward / BCEWithLogits / backward / step``. The
bundle side runs ``train#trainer`` from ``bundles/dna_binding/configs/train.json`` (cached one-hot dataset, padding
collate, length-aware network call, ignite handlers). ``compute_only`` runs the trainer's own step on one fixed batch
already on the device. All three use the same network definition, loss, optimizer, autocast, batch size and training
split, on whatever device the bundle picks (CUDA when present, else the CPU); validation is switched off on the
bundle side so only training steps are timed. On a GPU, ``gpu_utilisation`` is sampled with ``nvidia-smi`` during the
timed bundle iterations.

Prints one JSON object. Examples (from the repo root)::

    python scripts/bench_dna.py
    python scripts/bench_dna.py --num-sequences 4000 --iterations 20 --warmup 4 --repeats 2
    python scripts/bench_dna.py --set batch_size=1024 hidden_dim=128
    python scripts/bench_dna.py --data $MEDKIT_REAL_DATA/dna_binding/chipseq_encode
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from medkit.bench import (
    add_timing_arguments,
    bundle_parser,
    compare_throughput,
    plain_train_step,
    scratch_folder,
    seconds_per_step,
    start_bundle_run,
    timing_options,
)
from medkit.transforms import OneHotDNA

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundles" / "dna_binding" / "configs"
logger = logging.getLogger("bench_dna")


def bench_plain(data: Path, out: Path, iterations: int, warmup: int, overrides: dict) -> float:
    """Seconds per iteration of a plain PyTorch loop over a pre-encoded tensor of the same training split."""
    parser = bundle_parser(BUNDLE / "train.json", data, out, overrides)
    start_bundle_run(parser)
    step, device = plain_train_step(parser)
    items = parser.get_parsed_content("datalists")["train"]
    encode = OneHotDNA()
    x = torch.stack([encode(item["sequence"]) for item in items])  # equal lengths: the course's fixed 101 bp
    y = torch.tensor([[float(item["label"])] for item in items])
    loader = DataLoader(TensorDataset(x, y), batch_size=parser.get_parsed_content("batch_size"), shuffle=True)
    return seconds_per_step(lambda b: step(b[0].to(device), b[1].to(device)), loader, iterations, warmup, device)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="sequence CSV/FASTA file or folder; default: generated synthetic data")
    ap.add_argument("--num-sequences", type=int, default=12000, help="size of the generated synthetic data")
    add_timing_arguments(ap, iterations=30, warmup=5, repeats=3)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    options = timing_options(args)

    with scratch_folder() as tmp:
        data = args.data
        if data is None:
            from medkit.data.synthetic_dna import generate_dna_dataset

            data = generate_dna_dataset(tmp / "synthetic", num_sequences=args.num_sequences, seed=0)
        parser = bundle_parser(BUNDLE / "train.json", data, tmp, options["overrides"])
        result = {
            "data": str(args.data or f"synthetic ({args.num_sequences} x 101 bp)"),
            "hidden_dim": parser.get_parsed_content("hidden_dim"),
            **compare_throughput(
                BUNDLE / "train.json", data, tmp / "runs", unit="sequences", plain=bench_plain, **options
            ),
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
