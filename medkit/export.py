"""Export a bundle's trained network to TorchScript (``models/model.ts``) and ONNX (``models/model.onnx``).

::

    medkit export nuclei_seg --run runs/nuclei_seg/default

The network is the bundle's ``network_def`` as its standalone ``configs/inference.json`` builds it, with the weights
of ``<run>/model.pt`` (or the published ``models/model.pt``). MONAI writes both files:
``monai.networks.utils.convert_to_torchscript`` (scripted, so every shape and optional argument stays) saved with
``metadata.json`` and ``inference.json`` embedded, as ``python -m monai.bundle ckpt_export`` does, and
``monai.networks.utils.convert_to_onnx`` through PyTorch's dynamo exporter with a dynamic batch axis (and a dynamic
length axis for sequence inputs). Each file is loaded back (``torch.jit.load``, an onnxruntime session) and run on
random inputs of the metadata's shape at batch sizes 1 and 3; it is kept only when its outputs match PyTorch's within
``atol``, and the log names its size and the largest absolute difference measured.

ONNX needs the ``export`` extra (``pip install -e '.[export]'``: onnx, onnxscript, onnxruntime). Limits are in
``docs/export.md``; the one that changes results: arguments after the first (``BiLSTMClassifier``'s ``lengths``, which
packs padded batches) are not in the ONNX graph, so ONNX reads every position of its input.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.networks.utils import convert_to_onnx, convert_to_torchscript
from monai.utils import optional_import
from torch import nn

from medkit.bundle.errors import UserError, root_cause
from medkit.bundle.lookup import find_bundle
from medkit.bundle.models import MODEL_FILENAME
from medkit.interpret.explain import load_bundle_config
from medkit.networks.checkpoint import load_checkpoint
from medkit.utils import atomic_path

__all__ = [
    "CHECK_BATCH_SIZES",
    "DEFAULT_ATOL",
    "EXPORT_FILENAMES",
    "ExportedFile",
    "NetworkIO",
    "export_bundle",
    "find_weights",
    "max_abs_difference",
    "network_io",
]

logger = logging.getLogger(__name__)

#: format -> file written into the output folder (``bundles/<name>/models/`` by default)
EXPORT_FILENAMES: dict[str, str] = {"torchscript": "model.ts", "onnx": "model.onnx"}
DEFAULT_ATOL = 1e-4
#: batch sizes each exported file is checked at: one file must serve both (a dynamic batch axis)
CHECK_BATCH_SIZES: tuple[int, ...] = (1, 3)
_EXAMPLE_BATCH = 2  # torch.export specialises an example size of 0 or 1, so the traced example batch is 2
_ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
_EMBEDDED_CONFIG = "inference.json"


@dataclass(frozen=True)
class NetworkIO:
    """The network's input and output as ``metadata.json``'s ``network_data_format`` describes them.

    Attributes:
        input_name: the input's key (``image``), also the ONNX input name.
        output_name: the output's key (``pred``), also the ONNX output name.
        shape: the input shape without the batch axis, MONAI's ``(num_channels, *spatial_shape)``.
        dynamic_axes: axis -> name of the input axes that may change size: ``{0: "batch"}``, plus ``{1: "length"}``
            for ``"type": "sequence"`` inputs (whose ``num_channels`` is the sequence length).
    """

    input_name: str
    output_name: str
    shape: tuple[int, ...]
    dynamic_axes: Mapping[int, str]


@dataclass(frozen=True)
class ExportedFile:
    """One written export: its path, size in bytes and largest absolute output difference to PyTorch."""

    path: Path
    size: int
    max_abs_diff: float


def network_io(metadata: Mapping[str, Any], source: str | os.PathLike = "metadata.json") -> NetworkIO:
    """Reads the first input and output of ``metadata["network_data_format"]``.

    Raises:
        ValueError: naming ``source`` when the input or output, or the input's shape entries, are missing.
    """
    fmt = metadata.get("network_data_format", {})
    inputs, outputs = fmt.get("inputs") or {}, fmt.get("outputs") or {}
    if not inputs or not outputs:
        raise ValueError(f"{source}: network_data_format needs an input and an output to export the network")
    input_name, spec = next(iter(inputs.items()))
    if "num_channels" not in spec or "spatial_shape" not in spec:
        raise ValueError(f"{source}: network_data_format#inputs#{input_name} needs num_channels and spatial_shape")
    dynamic = {0: "batch", **({1: "length"} if spec.get("type") == "sequence" else {})}
    shape = (int(spec["num_channels"]), *(int(s) for s in spec["spatial_shape"]))
    return NetworkIO(input_name, next(iter(outputs)), shape, dynamic)


def find_weights(
    bundle_dir: str | os.PathLike, run_dir: str | os.PathLike | None = None, name: str = MODEL_FILENAME
) -> Path:
    """The checkpoint to export: ``<run_dir>/<name>``, or the bundle's published ``models/model.pt``.

    Raises:
        UserError: naming the missing file and how to get one.
    """
    bundle_dir = Path(bundle_dir)
    if run_dir is not None:
        path = Path(run_dir) / name
        if not path.is_file():
            raise UserError(f"{path} does not exist; point --run at a finished training run folder (it holds {name})")
        return path
    path = bundle_dir / "models" / MODEL_FILENAME
    if not path.is_file():
        raise UserError(
            f"no weights at {path}; pass --run <run folder> (holding {MODEL_FILENAME}), or publish a run first with "
            f"`medkit bundle publish {bundle_dir.name} --run <run folder>`"
        )
    return path


def max_abs_difference(
    reference: nn.Module, candidate: Callable[[torch.Tensor], Any], shapes: Sequence[Sequence[int]], seed: int = 0
) -> float:
    """The largest ``|candidate(x) - reference(x)|`` over random inputs ``x`` in ``[0, 1)`` of each shape.

    Args:
        reference: the PyTorch network, in eval mode.
        candidate: runs the exported network on a CPU tensor; returns a tensor or a numpy array.
        shapes: full input shapes, batch axis included.
        seed: seed of the random inputs.

    Raises:
        ValueError: when an output shape differs from the reference's.
    """
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for shape in shapes:
        x = torch.rand(*shape, generator=generator)
        with torch.no_grad():
            expected = reference(x).float()
            got = torch.as_tensor(np.asarray(candidate(x)), dtype=torch.float32)
        if got.shape != expected.shape:
            raise ValueError(
                f"input {tuple(shape)}: exported output {tuple(got.shape)}, PyTorch {tuple(expected.shape)}"
            )
        worst = max(worst, float((got - expected).abs().max()))
    return worst


def _build_network(bundle_dir: Path, checkpoint: Path, overrides: Mapping[str, Any]) -> nn.Module:
    # ckpt_path points at the exported weights, so what inference reads beside them (mapping.json) is found
    updates = {"ckpt_path": str(checkpoint), **overrides}
    config = bundle_dir / "configs" / _EMBEDDED_CONFIG
    try:
        network = load_bundle_config(bundle_dir, updates).get_parsed_content("network_def")
    except (RuntimeError, KeyError, ValueError) as exc:
        cause = root_cause(exc)  # MONAI wraps what failed in "Failed to evaluate ConfigExpression"
        raise UserError(
            f"{config}: cannot build network_def ({type(cause).__name__}: {' '.join(str(cause).split())})"
        ) from None
    try:
        load_checkpoint(network, checkpoint)
    except ValueError as exc:
        # torch lists one problem a line after a header line
        problems = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()] or [str(exc)]
        first = problems[0] if len(problems[0]) <= 200 else problems[0][:200] + " ..."
        raise UserError(
            f"{checkpoint} does not fit the network_def of {config} ({len(problems)} problem(s), first: "
            f"{first}); pass the settings the run was trained with as --override KEY=VALUE (they are in "
            f"{checkpoint.parent / 'run_settings.json'})"
        ) from None
    return network.cpu().eval()


def _onnx_modules() -> tuple[Any, Any]:
    modules = {name: optional_import(name) for name in _ONNX_PACKAGES}
    missing = [name for name, (_, found) in modules.items() if not found]
    if missing:
        raise RuntimeError(
            f"ONNX export needs {', '.join(_ONNX_PACKAGES)} ({', '.join(missing)} missing): "
            "pip install -e '.[export]', or pass --format torchscript"
        )
    return modules["onnx"][0], modules["onnxruntime"][0]


def _write_torchscript(network: nn.Module, path: Path, extra_files: Mapping[str, str]) -> Callable:
    from monai.data.torchscript_utils import save_net_with_metadata

    meta = json.loads(extra_files["metadata.json"])
    others = {name: text.encode() for name, text in extra_files.items() if name != "metadata.json"}
    with warnings.catch_warnings():
        # PyTorch marks TorchScript deprecated on every call; docs/export.md says so once
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        script = convert_to_torchscript(network)
        with open(path, "wb") as stream:
            save_net_with_metadata(script, stream, include_config_vals=False, meta_values=meta, more_extra_files=others)
        return torch.jit.load(str(path), map_location="cpu")


def _write_onnx(network: nn.Module, path: Path, extra_files: Mapping[str, str], io: NetworkIO) -> Callable:
    onnx, onnxruntime = _onnx_modules()
    dims = {axis: torch.export.Dim(name) for axis, name in io.dynamic_axes.items()}
    example = torch.rand(_EXAMPLE_BATCH, *io.shape)
    with warnings.catch_warnings():
        # torch.export's own deprecation notes and its note on LSTM weights are for PyTorch's developers
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=r".*were assigned during export", category=UserWarning)
        # use_trace=True hands the keyword arguments to torch.onnx.export; dynamo=True makes that torch.export.
        # A folder of our own for its file: without a filename MONAI exports to a NamedTemporaryFile, and the
        # exporter's external weights file beside it (<name>.data, as large as the weights) is never removed.
        with tempfile.TemporaryDirectory(prefix="medkit-onnx-") as scratch:
            model = convert_to_onnx(
                network,
                [example],
                filename=os.path.join(scratch, path.name),
                input_names=[io.input_name],
                output_names=[io.output_name],
                use_trace=True,
                dynamo=True,
                dynamic_shapes=(dims,),
                verbose=False,
            )
    for key, value in extra_files.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {io.input_name: x.numpy()})[0]


def _warn_dropped_arguments(network: nn.Module, path: Path, io: NetworkIO) -> None:
    extra = list(inspect.signature(network.forward).parameters)[1:]
    if extra:
        logger.warning(
            "%s has one input, %r: %s.forward's %s left out (only the first input is exported), so ONNX reads every "
            "position of its input; give it unpadded inputs, one size per batch (docs/export.md). model.ts takes %s "
            "too.",
            path,
            io.input_name,
            type(network).__name__,
            " and ".join(extra) + (" is" if len(extra) == 1 else " are"),
            " and ".join(extra),
        )


def export_bundle(
    bundle: str | os.PathLike,
    run_dir: str | os.PathLike | None = None,
    *,
    checkpoint: str = MODEL_FILENAME,
    output_dir: str | os.PathLike | None = None,
    formats: Sequence[str] = tuple(EXPORT_FILENAMES),
    overrides: Mapping[str, Any] | None = None,
    atol: float = DEFAULT_ATOL,
) -> list[ExportedFile]:
    """Exports a bundle's network with trained weights to TorchScript and ONNX, each checked against PyTorch.

    Args:
        bundle: bundle name (under ``bundles/``) or folder.
        run_dir: training run folder holding ``checkpoint``; default: the bundle's published ``models/model.pt``.
        checkpoint: the weights file in ``run_dir`` (a state dict, or a training checkpoint with a ``model`` entry).
        output_dir: where ``model.ts`` and ``model.onnx`` go; default ``<bundle>/models``.
        formats: a subset of :data:`EXPORT_FILENAMES` (``torchscript``, ``onnx``).
        overrides: config values to set before ``network_def`` is built (``{"channels": [16, 32]}``): the settings
            the run was trained with, where they differ from the bundle's defaults.
        atol: largest absolute output difference to PyTorch a file may have at batch sizes
            :data:`CHECK_BATCH_SIZES`; a file beyond it is not written.

    Returns:
        The written files, with their sizes and measured differences.

    Raises:
        UserError: no such checkpoint, weights that do not fit, an unknown format, or a file beyond ``atol``.
        RuntimeError: ONNX asked for without the ``export`` extra installed.
    """
    unknown = sorted(set(formats) - set(EXPORT_FILENAMES))
    if unknown or not formats:
        raise UserError(f"unknown export format {unknown or formats}; choose from {', '.join(EXPORT_FILENAMES)}")
    bundle_dir = find_bundle(bundle)
    weights = find_weights(bundle_dir, run_dir, checkpoint)
    if "onnx" in formats:
        _onnx_modules()  # fail before the slow part
    meta_file = bundle_dir / "configs" / "metadata.json"
    extra_files = {
        "metadata.json": meta_file.read_text(),
        _EMBEDDED_CONFIG: (bundle_dir / "configs" / _EMBEDDED_CONFIG).read_text(),
    }
    io = network_io(json.loads(extra_files["metadata.json"]), meta_file)
    network = _build_network(bundle_dir, weights, overrides or {})
    out = Path(output_dir) if output_dir is not None else bundle_dir / "models"
    shapes = [(batch, *io.shape) for batch in CHECK_BATCH_SIZES]
    written = []
    for fmt in formats:
        target = out / EXPORT_FILENAMES[fmt]
        out.mkdir(parents=True, exist_ok=True)
        # written under a hidden name and renamed once checked: models/ never holds a partial or unchecked file
        with atomic_path(target) as tmp:
            if fmt == "onnx":
                _warn_dropped_arguments(network, target, io)
                run = _write_onnx(network, tmp, extra_files, io)
            else:
                run = _write_torchscript(network, tmp, extra_files)
            diff = max_abs_difference(network, run, shapes)
            if not diff <= atol:
                raise UserError(
                    f"{target} not written: its outputs differ from PyTorch's by up to {diff:.3g} (> --atol {atol:g}) "
                    f"on random {shapes} inputs; check the network for train/eval-only branches, or raise --atol"
                )
        size = target.stat().st_size
        logger.info(
            "wrote %s (%s) from %s: max abs difference to PyTorch %.2e on random (B, %s) inputs, B = %s",
            target,
            f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.1f} KiB",
            weights,
            diff,
            ", ".join(map(str, io.shape)),
            " and ".join(map(str, CHECK_BATCH_SIZES)),
        )
        written.append(ExportedFile(target, size, diff))
    return written
