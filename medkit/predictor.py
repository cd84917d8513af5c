"""Predict with a bundle from Python, on arrays in memory: the API for pipelines.

::

    import numpy as np
    from medkit import Predictor

    predictor = Predictor.from_bundle("nuclei_seg", weights="runs/nuclei_seg/default/model.pt")
    masks = predictor.predict([np.asarray(image) for image in images])  # one (H, W) mask per image

The network, its settings, the deterministic transforms and the inferer come from the bundle's ``train.json`` (the
ones its validation uses), read by absolute path: the working directory is neither read nor changed, and nothing is
written. Network settings of the run that produced the weights (``run_settings.json`` beside them: channels, image
size, ...) are applied, so a published or trained ``model.pt`` loads as it was trained.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medkit.handlers.classification import load_threshold

__all__ = ["Predictor"]

logger = logging.getLogger(__name__)

# run settings that describe where a run was, not what its network or transforms are
_NOT_NETWORK = {"dataset_dir", "output_dir", "resume", "epochs", "num_workers", "seed", "max_minutes", "cache"}
_NOT_NETWORK |= {"weights", "pretrained_ckpt"}  # where initial weights came from: the trained ones replace them


def _network_settings(parser: Any, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The saved run settings that set the network and transforms, as config ids. A run saves the entry of a
    per-network table it used (retina's ``channels`` table, keyed by ``network_name``) as the plain value: it goes
    back into that entry, not over the table."""
    chosen = [settings.get(k) for k in ("network_name", "network") if isinstance(settings.get(k), str)]
    updates: dict[str, Any] = {}
    for key, value in settings.items():
        if key in _NOT_NETWORK or key not in parser:
            continue
        current = parser[key]
        if isinstance(current, Mapping):
            entry = next((name for name in chosen if name in current), None)
            if entry is not None and not isinstance(value, Mapping):
                updates[f"{key}#{entry}"] = value
        elif not (isinstance(current, str) and current.startswith(("$", "@", "%"))):
            updates[key] = value
    return updates


def _uses_sigmoid(postprocessing: Any) -> bool | None:
    """Whether a bundle's ``postprocessing`` list (raw config) starts with a sigmoid ``Activationsd``; ``None``
    when it has no such list (the channel count decides)."""
    if not isinstance(postprocessing, Sequence) or isinstance(postprocessing, str):
        return None
    for item in postprocessing:
        if isinstance(item, Mapping) and str(item.get("_target_", "")).endswith("Activationsd"):
            return bool(item.get("sigmoid", False))
    return None


def _bundle_dir(bundle: str | os.PathLike) -> Path:
    path = Path(bundle)
    if (path / "configs" / "train.json").is_file():
        return path.resolve()
    from medkit.bundle.lookup import find_bundle

    return Path(find_bundle(str(bundle))).resolve()


def _keys(transform: Any) -> list[str]:
    return [str(k) for k in getattr(transform, "keys", ())]


class _ArrayLoader:
    """Stands in for a bundle's ``LoadImaged`` on in-memory arrays: the array becomes a PIL image, the reader's
    converter and layout apply (MONAI's ``PILReader.get_data``: channels last, spatial axes reversed unless the
    bundle says otherwise), then channel first, exactly as the loader gives a PNG of the same pixels."""

    def __init__(self, loader: Any, key: str) -> None:
        readers = getattr(loader._loader, "readers", [])
        self.reader = readers[-1] if readers else None
        self.key = key

    def __call__(self, data: dict) -> dict:
        from monai.data import MetaTensor
        from monai.data.image_reader import PILReader
        from monai.transforms import EnsureChannelFirst
        from PIL import Image

        value = data[self.key]
        if isinstance(value, torch.Tensor):  # a tensor or MetaTensor is taken as already channel-first
            data[self.key] = value if isinstance(value, MetaTensor) else MetaTensor(value)
            return data
        reader = self.reader if isinstance(self.reader, PILReader) else PILReader()
        image = Image.fromarray(np.asarray(value))
        if callable(reader.converter):
            image = reader.converter(image)
        array, meta = reader.get_data(image)
        data[self.key] = EnsureChannelFirst()(MetaTensor(np.array(array), meta=meta))
        return data


@dataclass
class Predictor:
    """A bundle's network with its preprocessing and inferer, predicting on arrays in memory.

    Build it with :meth:`from_bundle`. :meth:`predict` takes a list of inputs and returns one numpy array for each:

    - segmentation bundles: an image as numpy ``(H, W)`` or ``(H, W, C)`` (as PIL, imageio or scikit-image give it),
      or a channel-first tensor/MetaTensor as MONAI's loader gives it; returns the ``(H, W)`` label map at the input's
      size (0/1 for sigmoid outputs, from the first channel when there are several, as nuclei_seg's foreground
      before its rim channel; class indices for softmax outputs);
    - classification bundles: an image likewise; returns the class probabilities (sigmoid of a single logit,
      softmax otherwise);
    - dna_binding: a DNA sequence string; returns the binding probability.

    Args:
        network: the network, with its weights, in eval mode.
        transforms: the bundle's deterministic transforms for the input key (label transforms dropped).
        inferer: the inferer the bundle validates with.
        device: where the network runs.
        input_key: the data key of the input (``image``, or ``sequence`` for DNA).
        task: ``segmentation`` or ``classification`` (from the bundle's metadata).
        prepare_batch: the bundle's ``prepare_batch`` (for networks that take more than the image).
        collate_fn: the bundle's collate function, for inputs of different lengths.
        to_kwargs: how batches are moved to the device (the bundle's memory format).
        sigmoid: segmentation outputs are independent sigmoid channels; ``None``: only when there is one channel.
        threshold: binary classifiers whose training saved a decision threshold beside the weights
            (``threshold.json``, chosen on the validation split): class 1 where the probability is above it, as the
            bundle's evaluate and inference decide; ``None`` otherwise (0.5 is then the usual cut).
    """

    network: torch.nn.Module
    transforms: Sequence[Any]
    inferer: Any
    device: torch.device
    input_key: str = "image"
    task: str = "segmentation"
    prepare_batch: Any = None
    collate_fn: Any = None
    to_kwargs: Mapping[str, Any] | None = None
    sigmoid: bool | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        from monai.transforms import Compose, Invertd

        self.network.eval()
        self.to_kwargs = dict(self.to_kwargs or {})
        # predictions go back through the preprocessing's spatial steps, as the bundle's inference inverts them
        self._invert = Invertd(
            keys="pred",
            transform=Compose(self.transforms),
            orig_keys=self.input_key,
            nearest_interp=False,
            to_tensor=True,
        )

    @classmethod
    def from_bundle(
        cls,
        bundle: str | os.PathLike,
        weights: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Predictor:
        """Loads a bundle and its weights.

        Args:
            bundle: a bundle name (``nuclei_seg``) or folder.
            weights: a ``model.pt`` (the weights alone, or a training checkpoint with a ``model`` entry); default:
                the bundle's published ``models/model.pt``. The ``run_settings.json`` beside it, if any, sets the
                network's settings.
            device: ``cuda``, ``cpu``, ...; default: CUDA when available.
            overrides: more config values (``{"channels": [4, 8, 16]}``), applied after the run's settings.

        Raises:
            FileNotFoundError: no weights file; the message names where it looked and how to get one.
        """
        from monai.bundle import ConfigParser
        from monai.engines.utils import default_prepare_batch

        root = _bundle_dir(bundle)
        weights = Path(weights) if weights is not None else root / "models" / "model.pt"
        if not weights.is_file():
            raise FileNotFoundError(
                f"weights {weights} not found: pass weights=<run folder>/model.pt, or publish a run with "
                f"medkit bundle publish {root.name} --run <run folder>"
            )
        parser = ConfigParser()
        parser.read_config(str(root / "configs" / "train.json"))
        settings_file = weights.parent / "run_settings.json"
        updates: dict[str, Any] = {}
        if settings_file.is_file():
            settings = json.loads(settings_file.read_text())
            updates.update(_network_settings(parser, settings))
        updates.update(overrides or {})
        device = (
            torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        )
        updates["device"] = f"$torch.device('{device}')"
        for key, value in updates.items():
            parser[key] = value
        parser.parse()
        # the memory layout the bundle trains and infers in (channels_last for convolutional bundles)
        to_kwargs = dict(parser.get_parsed_content("to_kwargs")) if "to_kwargs" in parser else {}
        network = parser.get_parsed_content("network_def").to(device, **to_kwargs)
        state = torch.load(weights, map_location=device, weights_only=True)
        if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):
            state = state["model"]
        network.load_state_dict(state)
        transforms = parser.get_parsed_content("validate#preprocessing").transforms
        input_key = _keys(transforms[0])[0]
        meta = json.loads((root / "configs" / "metadata.json").read_text())
        output_type = next(iter(meta["network_data_format"]["outputs"].values())).get("type")
        collate = parser.get("validate#dataloader#collate_fn")
        predictor = cls(
            network=network,
            transforms=cls._input_transforms(transforms, input_key),
            inferer=parser.get_parsed_content("validate#inferer"),
            device=device,
            input_key=input_key,
            task="segmentation" if output_type == "image" else "classification",
            prepare_batch=parser.get_parsed_content("prepare_batch")
            if "prepare_batch" in parser
            else default_prepare_batch,
            collate_fn=parser.get_parsed_content("validate#dataloader#collate_fn") if collate is not None else None,
            to_kwargs=to_kwargs,
            sigmoid=_uses_sigmoid(parser.get("postprocessing")),
            threshold=load_threshold(weights, default=None),
        )
        logger.info("%s: %s on %s, weights %s", root.name, type(network).__name__, device, weights)
        return predictor

    @staticmethod
    def _input_transforms(transforms: Sequence[Any], input_key: str) -> list[Any]:
        """The transforms that touch the input (the loader replaced by :class:`_ArrayLoader`), others dropped."""
        from monai.transforms import LoadImaged, MapTransform

        kept: list[Any] = []
        for t in transforms:
            keys = set(_keys(t))
            if isinstance(t, MapTransform) and not keys & {input_key, "image"}:
                continue  # labels, FOV masks: not part of an input
            if isinstance(t, LoadImaged) and input_key in keys:
                kept.append(_ArrayLoader(t, input_key))
                continue
            if isinstance(t, MapTransform):
                t.allow_missing_keys = True
            kept.append(t)
        return kept

    def _preprocess(self, item: Any) -> tuple[dict, tuple[int, ...] | None]:
        from monai.transforms import EnsureChannelFirstd

        loads = any(isinstance(t, (_ArrayLoader, EnsureChannelFirstd)) for t in self.transforms)
        if isinstance(item, np.ndarray) and item.ndim in (2, 3) and not loads:
            # a bundle that reads arrays (MedMNIST) takes them channel-first: (H, W) or (H, W, C) -> (C, H, W)
            item = item[None] if item.ndim == 2 else np.moveaxis(item, -1, 0)
        data: dict[str, Any] = {self.input_key: item}
        size = None
        for t in self.transforms:
            data = t(data)
            if size is None and isinstance(t, _ArrayLoader):
                size = tuple(data[self.input_key].shape[1:])
        return data, size

    @torch.no_grad()
    def predict(self, inputs: Sequence[Any], batch_size: int = 8) -> list[np.ndarray]:
        """Predictions for ``inputs`` (see the class docstring), in their order, ``batch_size`` at a time."""
        from monai.data import get_track_meta, set_track_meta

        tracking = get_track_meta()
        set_track_meta(True)  # the inversion reads the transforms each image went through
        try:
            return self._predict(inputs, batch_size)
        finally:
            set_track_meta(tracking)

    def _predict(self, inputs: Sequence[Any], batch_size: int) -> list[np.ndarray]:
        from monai.data import list_data_collate

        items = [self._preprocess(x) for x in inputs]
        outputs: list[np.ndarray | None] = [None] * len(items)
        # inputs of one preprocessed shape go through the network together (or any, with the bundle's collate)
        groups: dict[Any, list[int]] = {}
        for i, (data, _) in enumerate(items):
            shape = None if self.collate_fn is not None else tuple(data["image"].shape)
            groups.setdefault(shape, []).append(i)
        for indices in groups.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                batch = (self.collate_fn or list_data_collate)([items[i][0] for i in chunk])
                prepared = self.prepare_batch(batch, self.device, True, **self.to_kwargs)  # as MONAI's evaluator
                inputs_, args, kwargs = (prepared[0], (), {}) if len(prepared) == 2 else (prepared[0], *prepared[2:])
                logits = self.inferer(inputs_, self.network, *args, **kwargs)
                for i, value in zip(chunk, logits.float()):
                    outputs[i] = self._finish(value, items[i][0])
        return [o for o in outputs if o is not None]

    def _finish(self, logits: torch.Tensor, data: dict) -> np.ndarray:
        if self.task == "classification":
            flat = torch.as_tensor(logits).reshape(-1).cpu()
            return (torch.sigmoid(flat) if flat.numel() == 1 else torch.softmax(flat, 0)).numpy()
        sigmoid = self.sigmoid if self.sigmoid is not None else logits.shape[0] == 1
        probs = torch.sigmoid(logits) if sigmoid else torch.softmax(logits, 0)
        image = data[self.input_key] if self.input_key in data else data["image"]
        if getattr(image, "applied_operations", None):
            from monai.data import MetaTensor

            pred = MetaTensor(probs, meta=image.meta, applied_operations=list(image.applied_operations))
            probs = self._invert({"pred": pred, self.input_key: image})["pred"]
        probs = torch.as_tensor(probs).cpu()
        labels = (probs[0] >= 0.5) if sigmoid else probs.argmax(0)  # as MONAI's AsDiscrete
        labels = labels.numpy().astype(np.uint8)
        reader = next((t.reader for t in self.transforms if isinstance(t, _ArrayLoader)), None)
        return labels.T if reader is not None and getattr(reader, "reverse_indexing", True) else labels
