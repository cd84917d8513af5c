"""Apply medkit's blur and edge kernels to a scikit-image sample image and save a figure of the results.

The sample images ship inside scikit-image (``skimage.data.camera`` and ``skimage.data.cell``), so nothing is
downloaded. Panels: the input, box blur, Gaussian blur, Sobel horizontal and vertical edges, and the gradient
magnitude ``sqrt(Gx^2 + Gy^2)``.

Example (from the repo root)::

    python scripts/filter_figure.py --image camera --out runs/filters/camera_filters.png
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # no pyplot: headless, the figure only goes to a file
from skimage import data

from medkit.filters import (
    box_kernel,
    discrete_2d_convolution,
    gaussian_kernel,
    sobel_horizontal_kernel,
    sobel_vertical_kernel,
)

logger = logging.getLogger("filter_figure")
IMAGES = {"camera": data.camera, "cell": data.cell}


def filter_panels(image: np.ndarray, box_size: int, sigma: float) -> dict[str, np.ndarray]:
    """The figure's panels, titled. ``"valid"`` mode: zero padding would draw false edges along the border."""
    image = image.astype(np.float64) / 255.0
    gy = discrete_2d_convolution(image, sobel_horizontal_kernel(), "valid")
    gx = discrete_2d_convolution(image, sobel_vertical_kernel(), "valid")
    return {
        "input": image,
        f"box blur {box_size}x{box_size}": discrete_2d_convolution(image, box_kernel(box_size), "valid"),
        f"Gaussian blur sigma={sigma:g}": discrete_2d_convolution(image, gaussian_kernel(sigma=sigma), "valid"),
        "Sobel horizontal edges (Gy)": gy,
        "Sobel vertical edges (Gx)": gx,
        "gradient magnitude": np.hypot(gx, gy),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", choices=sorted(IMAGES), default="camera", help="scikit-image sample image")
    ap.add_argument("--box-size", type=int, default=9, help="box blur kernel size")
    ap.add_argument("--sigma", type=float, default=3.0, help="Gaussian blur sigma in pixels")
    ap.add_argument("--out", type=Path, default=Path("runs/filters/filter_figure.png"), help="PNG to write")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    panels = filter_panels(IMAGES[args.image](), args.box_size, args.sigma)
    fig = Figure(figsize=(12, 8.5), layout="constrained")
    axes = fig.subplots(2, 3)
    for ax, (title, panel) in zip(axes.flat, panels.items()):
        # signed derivatives get a diverging scale centred on 0, clipped at the 99.5th percentile for contrast
        signed = "edges" in title
        limit = float(np.percentile(np.abs(panel), 99.5)) if signed else None
        ax.imshow(
            panel,
            cmap="RdBu_r" if signed else "gray",
            vmin=-limit if signed else None,
            vmax=limit if signed else None,
        )
        ax.set_title(title)
        ax.axis("off")
    fig.suptitle(
        f"skimage.data.{args.image}() filtered with medkit.filters.discrete_2d_convolution (valid mode); "
        "edges: red = intensity rises right/down, blue = falls"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
