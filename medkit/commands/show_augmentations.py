"""``medkit show-augmentations``: a PNG grid of each augmentation preset applied to one sample.

::

    medkit show-augmentations [--dataset-dir data/retina_synthetic] [--layout drive] [--index 0] [--draws 4]
                              [--presets none flips rotate elastic intensity all] [--seed 0] [--prob 0.5]
                              [--output runs/retina_vessel_seg/augmentations.png]

The sample is training image ``--index`` of a retina dataset (DRIVE layout by default). When ``--dataset-dir`` is the
default and missing, the synthetic default is generated there first, as the bundle does. Each row is one preset; the
first column is the input and the others are random draws, with the augmented vessel mask outlined in cyan.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from medkit.utils import save_figure

__all__ = ["PRESETS", "add_parser", "load_retina_sample", "save_augmentation_grid"]

DEFAULT_DATASET_DIR = "data/retina_synthetic"
# medkit.transforms.augmentation.AUGMENTATION_PRESETS (a test checks they agree), spelled out so that building the
# parser (``medkit --help``) does not import torch and MONAI
PRESETS: tuple[str, ...] = ("none", "flips", "rotate", "elastic", "intensity", "all")


def load_retina_sample(dataset_dir: str | Path, layout: str = "drive", index: int = 0):
    """Training image ``index`` of a retina dataset as ``{"image": (3, H, W) in [0, 1], "label": (1, H, W)}``."""
    import torch
    from PIL import Image

    from medkit.data.retina import RETINA_LAYOUTS, read_retina_split

    spec = RETINA_LAYOUTS[layout]
    items = read_retina_split(Path(dataset_dir) / spec["splits"]["train"], spec)
    if not 0 <= index < len(items):
        raise ValueError(f"--index {index} is out of range: {dataset_dir} has {len(items)} training images")
    item = items[index]
    with Image.open(item["image"]) as im:
        image = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    with Image.open(item["label"]) as im:
        label = (np.asarray(im.convert("L")) > 127).astype(np.float32)
    return {
        "image": torch.from_numpy(image).permute(2, 0, 1).contiguous(),
        "label": torch.from_numpy(label)[None],
        "name": Path(item["image"]).name,
    }


def save_augmentation_grid(grid: dict[str, list[dict]], original: dict, output: str | Path, title: str = "") -> Path:
    """Draws ``{preset: [samples]}`` as rows (input first, then each draw) and saves a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = len(grid), 1 + max(len(draws) for draws in grid.values())
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), squeeze=False)
    for r, (name, draws) in enumerate(grid.items()):
        for c, sample in enumerate([original, *draws]):
            ax = axes[r, c]
            image = np.asarray(sample["image"], dtype=np.float32).transpose(1, 2, 0)
            ax.imshow(np.clip(image, 0.0, 1.0), interpolation="nearest")
            ax.contour(np.asarray(sample["label"])[0], levels=[0.5], colors="cyan", linewidths=0.4)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=10)
            if r == 0:
                ax.set_title("input" if c == 0 else f"draw {c}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, output, dpi=110)


def _run(args: argparse.Namespace) -> int:
    from medkit.transforms.augmentation import preview_augmentations

    dataset_dir = Path(args.dataset_dir)
    if not dataset_dir.exists():
        if dataset_dir != Path(DEFAULT_DATASET_DIR):
            raise FileNotFoundError(f"--dataset-dir {dataset_dir} does not exist")
        from medkit.data.synthetic_retina import generate_retina_dataset

        generate_retina_dataset(dataset_dir, seed=0)
    sample = load_retina_sample(dataset_dir, args.layout, args.index)
    name = sample.pop("name")
    grid = preview_augmentations(sample, args.presets, draws=args.draws, seed=args.seed, prob=args.prob)
    path = save_augmentation_grid(grid, sample, args.output, title=f"{name}: augmentation presets (seed {args.seed})")
    print(path)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``show-augmentations`` to the ``medkit`` parser."""
    parser = subparsers.add_parser("show-augmentations", help="render a PNG grid of the augmentation presets")
    parser.add_argument(
        "--dataset-dir", default=DEFAULT_DATASET_DIR, help="retina dataset (default: the generated one)"
    )
    parser.add_argument("--layout", default="drive", choices=["drive", "chase_db1", "stare"])
    parser.add_argument("--index", type=int, default=0, help="which training image to show (default 0)")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--draws", type=int, default=4, help="random draws per preset (default 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prob", type=float, default=0.5, help="probability of each transform (training uses 0.5)")
    parser.add_argument("--output", default="runs/retina_vessel_seg/augmentations.png")
    parser.set_defaults(func=_run)
