"""``medkit export``: a bundle's trained network as TorchScript and ONNX, in the bundle's ``models/``.

::

    medkit export nuclei_seg --run runs/nuclei_seg/default [--checkpoint model.pt] [--output-dir DIR]
        [--format all|torchscript|onnx] [--override channels=[16,32,64,128,256]] [--atol 1e-4]

writes ``bundles/nuclei_seg/models/model.ts`` and ``model.onnx`` (without ``--run``: from the published
``models/model.pt``), logs each file's size and its largest output difference to PyTorch, and prints the paths.
ONNX needs the ``export`` extra: ``pip install -e '.[export]'``. See ``docs/export.md``.
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]

FORMATS = {"all": ("torchscript", "onnx"), "torchscript": ("torchscript",), "onnx": ("onnx",)}


def _export(args: argparse.Namespace) -> int:
    import logging

    from medkit.bundle.cli_values import parse_overrides
    from medkit.export import export_bundle

    # the ONNX optimiser logs each of its passes at INFO; the export's own lines are the ones to read
    for name in ("onnxscript", "onnx_ir"):
        logging.getLogger(name).setLevel(logging.WARNING)

    written = export_bundle(
        args.bundle,
        args.run,
        checkpoint=args.checkpoint,
        output_dir=args.output_dir,
        formats=FORMATS[args.format],
        overrides=parse_overrides(args.override),
        atol=args.atol,
    )
    for item in written:
        print(item.path)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``export`` to the ``medkit`` parser."""
    parser = subparsers.add_parser(
        "export",
        help="export a bundle's trained network to TorchScript and ONNX (models/model.ts, models/model.onnx)",
        description="Builds network_def from the bundle's configs/inference.json, loads the weights, writes "
        "model.ts (TorchScript, MONAI's ckpt_export format) and model.onnx (dynamic batch axis), checks each against "
        "PyTorch on random inputs of the metadata's shape at batch sizes 1 and 3, and prints their paths. "
        "ONNX needs the export extra: pip install -e '.[export]'. Limits: docs/export.md.",
    )
    parser.add_argument("bundle", help="bundle name under bundles/, or a bundle folder")
    parser.add_argument("--run", default=None, help="training run folder holding the weights (default: models/)")
    parser.add_argument("--checkpoint", default="model.pt", help="weights file in --run (default model.pt)")
    parser.add_argument("--output-dir", default=None, help="where the files go (default: <bundle>/models)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="all", help="default: all (both)")
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config value the run was trained with, e.g. channels=[8,16,32] (repeatable; see run_settings.json)",
    )
    parser.add_argument("--atol", type=float, default=1e-4, help="largest output difference to PyTorch allowed")
    parser.set_defaults(func=_export)
