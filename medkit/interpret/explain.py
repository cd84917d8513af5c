"""Explain a trained bundle's predictions on image files: saliency, Grad-CAM and feature-map PNG grids.

The network comes from the bundle's ``network_def`` and the input pipeline from ``preprocessing`` (a MONAI
``Compose`` over the key ``image``), both parsed from the bundle's standalone ``configs/inference.json`` exactly as
``python -m monai.bundle run`` would, so the explained inputs are what the network saw at inference.

Images are picked per class, ``per_class`` of each in sorted file order. The class of an image is, in this order:

1. its label in a datalist JSON (``labels_file``, e.g. a run's ``datalist.json``: any lists of ``{"image", "label"}``);
2. the bundle's filename rule, a callable at config id ``explain#label_fn`` (path -> class), if it defines one;
3. medkit's histology naming, ``T_*`` tumour (1) and ``N_*`` normal (0), when every file follows it;
4. otherwise the network's predicted class (figure titles then say ``pred`` only).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medkit.bundle.cli_values import parse_overrides
from medkit.bundle.lookup import find_bundle
from medkit.interpret.feature_maps import feature_maps
from medkit.interpret.figures import save_feature_map_grid, save_map_grid
from medkit.interpret.gradcam import grad_cam
from medkit.interpret.saliency import predicted_class, saliency_map
from medkit.networks.checkpoint import load_checkpoint

__all__ = [
    "IMAGE_SUFFIXES",
    "METHODS",
    "explain_images",
    "histology_label",
    "list_image_files",
    "load_bundle_config",
    "load_checkpoint",
    "parse_overrides",
]

logger = logging.getLogger(__name__)

METHODS = ("saliency", "gradcam", "features")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_HISTOLOGY = re.compile(r"^(?P<letter>[TN])_")


def load_bundle_config(bundle: str | os.PathLike, overrides: dict[str, Any] | None = None):
    """The bundle's standalone ``configs/inference.json`` with ``overrides``, parsed lazily.

    Its ``%`` macros name ``train.json`` from the repository root, so they are expanded with the working directory
    set to the folder holding ``bundles/``; ``medkit explain`` then works from anywhere.

    Returns:
        a ``monai.bundle.ConfigParser``; only what is asked for (``network_def``, ``preprocessing``) is built.
    """
    from monai.bundle import ConfigParser

    root = find_bundle(bundle).resolve()
    config = root / "configs" / "inference.json"
    if not config.is_file():
        raise FileNotFoundError(f"bundle {bundle}: {config} does not exist")
    parser = ConfigParser()
    parser.read_config(str(config))
    cwd = os.getcwd()
    try:
        os.chdir(root.parents[1])
        parser.resolve_macro_and_relative_ids()
    finally:
        os.chdir(cwd)
    for key, value in (overrides or {}).items():
        parser[key] = value
    for key in ("network_def", "preprocessing"):
        if key not in parser:
            raise ValueError(f"bundle {bundle}: {config} defines no {key!r}")
    return parser


def list_image_files(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Image files given directly or found (not recursively) in folders, sorted per folder.

    Raises:
        FileNotFoundError: for a missing path or when nothing is found.
        ValueError: for a file that is not a supported image.
    """
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise ValueError(f"{path} is not an image file ({'/'.join(IMAGE_SUFFIXES)})")
            files.append(path)
        else:
            raise FileNotFoundError(f"image path {path} does not exist")
    if not files:
        raise FileNotFoundError(f"no {'/'.join(IMAGE_SUFFIXES)} files in {[str(i) for i in inputs]}")
    return files


def histology_label(path: str | os.PathLike) -> int | None:
    """1 for ``T_*`` (tumour), 0 for ``N_*`` (normal), ``None`` for other names."""
    match = _HISTOLOGY.match(Path(path).name)
    return None if match is None else int(match["letter"] == "T")


def _datalist_labels(path: str | os.PathLike) -> dict[Path, int]:
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "image" in node and "label" in node and isinstance(node["image"], str):
                label = node["label"]
                labels[Path(node["image"]).resolve()] = int(np.asarray(label).reshape(-1)[0])
            else:
                for value in node.values():
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    labels: dict[Path, int] = {}
    walk(json.loads(Path(path).read_text()))
    if not labels:
        raise ValueError(f"labels file {path} holds no {{'image': ..., 'label': ...}} items")
    return labels


def _known_labels(files: list[Path], labels_file: str | os.PathLike | None, label_fn: Callable | None):
    if labels_file is not None:
        table = _datalist_labels(labels_file)
        return {f: table.get(f.resolve()) for f in files}, f"labels from {labels_file}"
    if label_fn is not None:
        return {f: int(label_fn(str(f))) for f in files}, "labels from the bundle's explain#label_fn"
    labels = {f: histology_label(f) for f in files}
    if all(v is not None for v in labels.values()):
        return labels, "labels from T_/N_ file names"
    return None, "no labels known: images picked by predicted class"


def _select(files: list[Path], classes: dict[Path, int | None], per_class: int) -> list[Path]:
    chosen: dict[int, list[Path]] = {}
    for f in files:
        cls = classes.get(f)
        if cls is not None and len(chosen.setdefault(cls, [])) < per_class:
            chosen[cls].append(f)
    return [f for cls in sorted(chosen) for f in chosen[cls]]


def explain_images(
    bundle: str | os.PathLike,
    checkpoint: str | os.PathLike,
    images: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike | None = None,
    per_class: int = 2,
    methods: Sequence[str] = METHODS,
    device: str = "cpu",
    overrides: dict[str, Any] | None = None,
    labels_file: str | os.PathLike | None = None,
    layers: Sequence[int] = (1, 5, 10),
    num_channels: int = 4,
    target_layer: str | None = None,
    seed: int = 0,
    transpose: bool | None = None,
) -> list[Path]:
    """Writes ``saliency.png``, ``gradcam.png`` and ``feature_maps.png`` (one per method) for ``per_class`` images of
    each class, one row per image.

    Args:
        bundle: bundle folder or name (see :func:`medkit.bundle.lookup.find_bundle`).
        checkpoint: the weights (see :func:`load_checkpoint`).
        images: image files and/or folders of them.
        output_dir: where the PNGs go; default ``<checkpoint folder>/explain``.
        per_class: images per class.
        methods: any of ``saliency``, ``gradcam``, ``features``.
        device: torch device.
        overrides: config ids to set before parsing (e.g. ``{"spatial_size": [64, 64]}``).
        labels_file: datalist JSON with the images' labels.
        layers: 1-based conv layer numbers for the feature maps.
        num_channels: random channels per feature-map layer.
        target_layer: Grad-CAM layer name; default the last ``nn.Conv2d``.
        seed: seed of the feature-map channel choice.
        transpose: swap the spatial axes for display (MONAI's 2D readers load images x first); default the bundle's
            ``explain#transpose`` if it defines one, else true.

    Returns:
        the written PNG paths.
    """
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise ValueError(f"unknown methods {unknown or list(methods)}; choose from {list(METHODS)}")
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    files = list_image_files(images)
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    model = _BundleModel(bundle, checkpoint, device, overrides)
    labels, source = _known_labels(files, labels_file, model.label_fn)
    logger.info("%d images; %s", len(files), source)
    if labels is None:
        preds = {f: int(predicted_class(model.predict(model.load(f)[None]))[0]) for f in files}
        chosen = _select(files, preds, per_class)
    else:
        chosen = _select(files, labels, per_class)
    if not chosen:
        raise ValueError(f"none of the {len(files)} images has a known label ({source})")
    x = torch.stack([model.load(f) for f in chosen])
    titles = [
        f.name + ("" if labels is None else f"\nlabel {model.class_name(labels[f])}") + f"\npred {model.class_name(p)}"
        for f, p in zip(chosen, predicted_class(model.predict(x)).tolist())
    ]
    out = Path(output_dir) if output_dir is not None else Path(checkpoint).parent / "explain"
    transpose = model.transpose if transpose is None else transpose
    return _write_figures(model.network, x.to(device), titles, out, methods, transpose,
                          dict(layers=layers, num_channels=num_channels, seed=seed), target_layer)  # fmt: skip


class _BundleModel:
    """The bundle's network with its checkpoint, its inference preprocessing and its optional explain hints."""

    def __init__(self, bundle, checkpoint, device: str, overrides: dict[str, Any] | None) -> None:
        # ckpt_path is the checkpoint explained, so settings read beside it (the run's network) are its own
        parser = load_bundle_config(bundle, {"ckpt_path": str(checkpoint), **(overrides or {})})
        self.device = device
        self.network = load_checkpoint(parser.get_parsed_content("network_def"), checkpoint).to(device).eval()
        self.preprocessing = parser.get_parsed_content("preprocessing")
        self.class_names = parser.get_parsed_content("class_names") if "class_names" in parser else None
        self.label_fn = parser.get_parsed_content("explain#label_fn") if "explain#label_fn" in parser else None
        has_hint = "explain#transpose" in parser
        self.transpose = bool(parser.get_parsed_content("explain#transpose")) if has_hint else True

    def load(self, path: Path) -> torch.Tensor:
        try:
            return torch.as_tensor(self.preprocessing({"image": str(path)})["image"]).float()
        except Exception as exc:
            raise ValueError(f"preprocessing failed on {path}: {exc}") from exc

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.network(x.to(self.device)).float().cpu()

    def class_name(self, cls: int) -> str:
        names = self.class_names
        return str(names[cls]) if names is not None and cls < len(names) else f"class {cls}"


def _write_figures(
    network: nn.Module,
    x: torch.Tensor,
    titles: list[str],
    out: Path,
    methods: Sequence[str],
    transpose: bool,
    feature_kwargs: dict[str, Any],
    target_layer: str | None,
) -> list[Path]:
    arrays = list(x.cpu().numpy())
    written = []
    if "saliency" in methods:
        maps = list(saliency_map(network, x).cpu().numpy())
        written.append(save_map_grid(out / "saliency.png", arrays, maps, titles, "saliency |d logit / d x|",
                                     transpose=transpose))  # fmt: skip
    if "gradcam" in methods:
        maps = list(grad_cam(network, x, target_layer).cpu().numpy())
        written.append(save_map_grid(out / "gradcam.png", arrays, maps, titles, "Grad-CAM", overlay=True,
                                     transpose=transpose))  # fmt: skip
    if "features" in methods:
        feats = feature_maps(network, x, **feature_kwargs)
        written.append(save_feature_map_grid(out / "feature_maps.png", arrays, feats, titles, transpose=transpose))
    return written
