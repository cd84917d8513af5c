"""``medkit data fetch|synth``: download or generate datasets.

::

    medkit data fetch dsb2018 [--data-root data] [--url URL] [--sha256 HEX | --no-verify]
    medkit data synth nuclei OUT_DIR [--num-images 48] [--size 256] [--seed 0]
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]

TRAIN_COMMANDS = {
    "dsb2018": "python -m monai.bundle run --config_file bundles/nuclei_seg/configs/train.json --dataset_dir {path}",
}


def _fetch(args: argparse.Namespace) -> int:
    from medkit.data.fetch import fetch_dataset

    path = fetch_dataset(
        args.name, data_root=args.data_root, url=args.url, sha256=args.sha256, verify=not args.no_verify
    )
    print(path)
    if args.name in TRAIN_COMMANDS:
        print(f"train with: {TRAIN_COMMANDS[args.name].format(path=path)}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from medkit.data.synthetic_nuclei import generate_nuclei_dataset

    path = generate_nuclei_dataset(args.out_dir, num_images=args.num_images, image_size=args.size, seed=args.seed)
    print(path)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``data fetch`` and ``data synth`` to the ``medkit`` parser."""
    from medkit.data.fetch import DATASETS

    data = subparsers.add_parser("data", help="download or generate datasets").add_subparsers(
        dest="action", required=True
    )

    fetch = data.add_parser("fetch", help="download, verify and unpack a public dataset into data/")
    fetch.add_argument("name", choices=sorted(DATASETS))
    fetch.add_argument("--data-root", default="data", help="root folder for datasets (default: data)")
    fetch.add_argument("--url", default=None, help="download URL override (a mirror)")
    fetch.add_argument("--sha256", default=None, help="sha256 of the archive you trust (checked after download)")
    fetch.add_argument("--no-verify", action="store_true", help="skip checksum verification (logs a warning)")
    fetch.set_defaults(func=_fetch)

    synth = data.add_parser("synth", help="write a synthetic dataset in a real on-disk layout")
    synth.add_argument("kind", choices=["nuclei"])
    synth.add_argument("out_dir")
    synth.add_argument("--num-images", type=int, default=48)
    synth.add_argument("--size", type=int, default=256)
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=_synth)
