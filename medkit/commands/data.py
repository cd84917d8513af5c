"""``medkit data fetch|synth``: download or generate datasets.

::

    medkit data fetch NAME [--out data] [--flag F --size 28] [--url URL | --base-url URL] [--sha256 HEX | --no-verify]
    medkit data synth nuclei OUT_DIR [--num-images 48] [--size 256] [--seed 0]
    medkit data synth pcam OUT_DIR [--num-images 200] [--size 96] [--seed 0]
    medkit data coco-masks --annotations FILE --images DIR --categories cake,dog --out DIR [--size 256]
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def _digests(values: list[str] | None) -> str | dict[str, str] | None:
    """``--sha256`` values: one bare digest (a one-file dataset), or ``FILE=HEX`` pairs."""
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return values[0]
    pairs = [value.partition("=") for value in values]
    for value, (_, sep, _) in zip(values, pairs):
        if not sep:
            raise ValueError(f"--sha256 {value}: with more than one digest, give each as FILE=HEX")
    return {name: digest for name, _, digest in pairs}


def _fetch(args: argparse.Namespace) -> int:
    from medkit.data.fetch import ManualDownloadRequired, fetch_dataset, get_dataset, train_command

    options = {k: v for k, v in (("flag", args.flag), ("size", args.size)) if v is not None}
    spec = get_dataset(args.name, **options)
    try:
        path = fetch_dataset(
            spec,
            data_root=args.data_root,
            url=args.url,
            base_url=args.base_url,
            sha256=_digests(args.sha256),
            verify=not args.no_verify,
        )
    except ManualDownloadRequired as exc:
        print(exc.instructions)
        raise
    command = train_command(spec, path)
    if command:
        print(f"train with: {command}")
    print(f"--dataset_dir {path}")
    return 0


# per kind: (number of images, image size) when the options are not given
SYNTH_DEFAULTS = {"nuclei": (48, 256), "pcam": (200, 96)}


def _synth(args: argparse.Namespace) -> int:
    num, size = SYNTH_DEFAULTS[args.kind]
    num = num if args.num_images is None else args.num_images
    size = size if args.size is None else args.size
    if args.kind == "pcam":
        from medkit.data.synthetic_pcam import generate_pcam_dataset

        print(generate_pcam_dataset(args.out_dir, num_patches=num, size=size, seed=args.seed))
        return 0
    from medkit.data.synthetic_nuclei import generate_nuclei_dataset

    path = generate_nuclei_dataset(args.out_dir, num_images=num, image_size=size, seed=args.seed)
    print(path)
    return 0


COCO_TRAIN_COMMAND = (
    "python -m monai.bundle run --config_file "
    "\"['bundles/shapes_seg/configs/train.json','bundles/shapes_seg/configs/coco_masks.json']\""
)


def _coco_masks(args: argparse.Namespace) -> int:
    from medkit.data.coco import write_coco_masks

    categories = [c.strip() for c in args.categories.split(",") if c.strip()]
    summary = write_coco_masks(
        args.annotations, args.images, args.out, categories, size=args.size, min_area=args.min_area
    )
    counts = ", ".join(f"{category} {count}" for category, count in summary.per_category.items())
    skipped = ", ".join(f"{count} {why}" for why, count in summary.skipped.items()) or "none"
    print(f"{summary.subset}: {summary.written} pairs in {summary.out_dir} ({counts}); images skipped: {skipped}")
    print(f"train with: {COCO_TRAIN_COMMAND} --dataset_dir {summary.out_dir}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``data fetch`` and ``data synth`` to the ``medkit`` parser."""
    from medkit.data.fetch import DATASETS

    data = subparsers.add_parser("data", help="download or generate datasets").add_subparsers(
        dest="action", required=True
    )

    fetch = data.add_parser(
        "fetch", help="download, verify and unpack a public dataset in the layout its bundle reads (docs/data.md)"
    )
    fetch.add_argument("name", choices=sorted(DATASETS))
    fetch.add_argument("--out", "--data-root", dest="data_root", default="data", help="root folder (default: data)")
    fetch.add_argument("--flag", default=None, help="medmnist: the MedMNIST flag (default: breastmnist)")
    fetch.add_argument("--size", type=int, default=None, help="medmnist: image size 28, 64, 128 or 224 (default: 28)")
    fetch.add_argument("--url", default=None, help="download URL override for a one-file dataset (a mirror)")
    fetch.add_argument("--base-url", default=None, help="mirror holding every file of the dataset by its file name")
    fetch.add_argument(
        "--sha256",
        action="append",
        default=None,
        help="sha256 you trust for a dataset without a published checksum: HEX, or FILE=HEX once per file",
    )
    fetch.add_argument("--no-verify", action="store_true", help="skip checksum verification (logs a warning)")
    fetch.set_defaults(func=_fetch)

    synth = data.add_parser("synth", help="write a synthetic dataset in a real on-disk layout")
    synth.add_argument("kind", choices=sorted(SYNTH_DEFAULTS))
    synth.add_argument("out_dir")
    synth.add_argument("--num-images", type=int, default=None, help="nuclei: 48, pcam: 200")
    synth.add_argument("--size", type=int, default=None, help="image side in pixels; nuclei: 256, pcam: 96")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=_synth)

    coco = data.add_parser("coco-masks", help="one instance mask per COCO image, in the flat images/ + masks/ layout")
    coco.add_argument("--annotations", required=True, help="COCO instances JSON, e.g. instances_train2017.json")
    coco.add_argument("--images", required=True, help="the folder of its images, e.g. train2017/")
    coco.add_argument("--categories", required=True, help="comma-separated COCO names, e.g. cake,dog,motorcycle")
    coco.add_argument("--out", required=True, help="receives images/, masks/ and manifest.csv")
    coco.add_argument("--size", type=int, default=256, help="side of the square images and masks (default: 256)")
    coco.add_argument("--min-area", type=float, default=0.0, help="smallest COCO area an instance may have")
    coco.set_defaults(func=_coco_masks)
