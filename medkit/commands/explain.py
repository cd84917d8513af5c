"""``medkit explain``: saliency, Grad-CAM and feature-map PNG grids for a trained bundle.

::

    medkit explain --bundle pcam_transfer --checkpoint runs/pcam_transfer/default/model.pt --images data/pcam/test \
        [--output-dir DIR] [--per-class 2] [--methods saliency,gradcam,features] [--device cpu] \
        [--labels runs/pcam_transfer/default/datalist.json] [--override spatial_size=[64,64]] ...
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def _explain(args: argparse.Namespace) -> int:
    from medkit.interpret.explain import explain_images, parse_overrides

    paths = explain_images(
        args.bundle,
        args.checkpoint,
        args.images,
        output_dir=args.output_dir,
        per_class=args.per_class,
        methods=[m.strip() for m in args.methods.split(",") if m.strip()],
        device=args.device,
        overrides=parse_overrides(args.override),
        labels_file=args.labels,
        layers=[int(k) for k in args.layers.split(",")],
        target_layer=args.target_layer,
        seed=args.seed,
        transpose=False if args.no_transpose else None,
    )
    for path in paths:
        print(path)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``explain`` to the ``medkit`` parser."""
    parser = subparsers.add_parser(
        "explain",
        help="saliency / Grad-CAM / feature-map figures for a trained bundle",
        description="Writes saliency.png, gradcam.png and feature_maps.png (one row per image, --per-class images "
        "of each class) for a bundle's network_def and infer#preprocessing, and prints their paths. Classes come "
        "from --labels, the bundle's explain#label_fn, T_/N_ file names, or else the predicted class.",
    )
    parser.add_argument("--bundle", required=True, help="bundle name (under bundles/) or folder")
    parser.add_argument("--checkpoint", required=True, help="model.pt (state dict, or dict with key 'model')")
    parser.add_argument("--images", required=True, nargs="+", help="image files and/or folders of images")
    parser.add_argument("--output-dir", default=None, help="default: <checkpoint folder>/explain")
    parser.add_argument("--per-class", type=int, default=2, help="images per class (default 2)")
    parser.add_argument("--methods", default="saliency,gradcam,features", help="comma-separated subset")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--labels", default=None, help="datalist JSON with {'image', 'label'} items")
    parser.add_argument("--layers", default="1,5,10", help="1-based conv layers for feature maps (default 1,5,10)")
    parser.add_argument("--target-layer", default=None, help="Grad-CAM module name (default: last nn.Conv2d)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the feature-map channel choice")
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a bundle config id before parsing, e.g. spatial_size=[64,64] (repeatable)",
    )
    parser.add_argument(
        "--no-transpose",
        action="store_true",
        help="do not swap spatial axes for display (default: the bundle's explain#transpose, else swap, for "
        "MONAI's x-first 2D readers)",
    )
    parser.set_defaults(func=_explain)
