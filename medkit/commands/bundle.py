"""``medkit bundle publish``: put a run's best weights where MONAI's bundle tools look for them.

::

    medkit bundle publish nuclei_seg --run runs/nuclei_seg/default

copies ``runs/nuclei_seg/default/model.pt`` to ``bundles/nuclei_seg/models/model.pt``, after which
``monai.bundle.load("nuclei_seg", bundle_dir="bundles")`` and ``configs/inference.json`` use it by default.
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def _publish(args: argparse.Namespace) -> int:
    from medkit.bundle.lookup import find_bundle
    from medkit.bundle.models import publish_model

    bundle_dir = find_bundle(args.bundle)
    target = publish_model(bundle_dir, args.run, name=args.checkpoint)
    print(target)
    print(
        f"predict with: python -m monai.bundle run --config_file {bundle_dir}/configs/inference.json "
        "--input_dir <folder> --output_dir <predictions>"
    )
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bundle", help="manage a bundle's published weights (models/)")
    sub = parser.add_subparsers(dest="bundle_command", required=True)
    publish = sub.add_parser("publish", help="copy a run's best weights to bundles/<name>/models/model.pt")
    publish.add_argument("bundle", help="bundle name under bundles/, or a bundle folder")
    publish.add_argument("--run", required=True, help="training run folder holding model.pt")
    publish.add_argument("--checkpoint", default="model.pt", help="checkpoint in the run folder (default model.pt)")
    publish.set_defaults(func=_publish)
