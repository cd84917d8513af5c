"""Benchmark the medmnist_cls bundle: training throughput against a plain PyTorch loop and against compute only.

Three figures, measured in the same run on whatever device the bundle picks (CUDA when present, else the CPU):
``bundle`` runs ``train#trainer`` from ``bundles/medmnist_cls/configs/train.json`` (validation off); ``plain_loop`` is a
hand-written loop over the bundle's own training data loader with the same network, loss, optimizer, autocast and
batch size; ``compute_only`` runs the trainer's own step on one fixed batch already on the device, showing what the
data pipeline (augmentation, collation, copies) costs. On a GPU, ``gpu_utilisation`` is sampled with ``nvidia-smi``
during the timed bundle iterations.

Without ``--data`` the bundle generates its synthetic MedMNIST-format file, as a training run without data does.

Prints one JSON object. Examples (from the repo root)::

    python scripts/bench_medmnist.py
    python scripts/bench_medmnist.py --iterations 12 --warmup 2 --repeats 2 --set batch_size=64
    python scripts/bench_medmnist.py --set network='"mlp"' augment=false
    python scripts/bench_medmnist.py --data $MEDKIT_REAL_DATA/medmnist/breastmnist.npz
    python scripts/bench_medmnist.py --data $MEDKIT_REAL_DATA/medmnist --set flag='"pathmnist"' batch_size=512
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from medkit.bench import add_timing_arguments, compare_throughput, scratch_folder, timing_options

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundles" / "medmnist_cls" / "configs"
logger = logging.getLogger("bench_medmnist")


def dataset_dir_and_flag(data: Path, overrides: dict) -> tuple[Path, dict]:
    """``--data`` as the bundle takes it: a folder stays; an ``.npz`` gives its folder and, unless ``flag`` is set,
    the flag its name starts with (``breastmnist.npz``, ``breastmnist_28.npz`` -> ``breastmnist``).

    Raises:
        ValueError: if ``data`` is neither a folder nor an ``.npz`` file.
    """
    if data.is_dir():
        return data, overrides
    if data.is_file() and data.suffix == ".npz":
        return data.parent, {"flag": data.stem.split("_")[0], **overrides}
    raise ValueError(f"--data must be a MedMNIST .npz file or the folder that holds it, got {data}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="MedMNIST .npz (or its folder); default: the bundle's synthetic data")
    add_timing_arguments(ap, iterations=20, warmup=4, repeats=3)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    options = timing_options(args)

    with scratch_folder() as tmp:
        if args.data is None:  # an empty default folder: the bundle writes its synthetic file there
            data = tmp / "synthetic"
        else:
            data, options["overrides"] = dataset_dir_and_flag(args.data, options["overrides"])
        result = {
            "data": str(args.data or "synthetic (the bundle's generated MedMNIST-format file)"),
            **compare_throughput(BUNDLE / "train.json", data, tmp / "runs", **options),
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
