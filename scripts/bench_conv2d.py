"""Benchmark medkit's stride-trick ``discrete_2d_convolution`` against a naive double loop and SciPy.

Every method runs on the same random image and kernel. ``scipy.signal.correlate2d`` computes the same sum and is the
baseline; ``scipy.signal.convolve2d`` (the course's comparison) and ``scipy.ndimage.convolve`` compute it with the
kernel flipped (convolution flips it back), ``ndimage`` over the whole image and cropped to the "valid" part; the
two loops only run on images up to ``--naive-max`` pixels a side so they finish quickly: the textbook loop
(four nested Python loops, one multiply-add per kernel element, as the course writes it) and the window loop (one
NumPy window product per output pixel). Times are the best of ``--repeats`` runs; ratios above 1 mean medkit is faster.

Prints one JSON object; ``--plot`` also draws the times (one panel per image size, milliseconds on a log axis
against the kernel size, a line per method). Example (from the repo root)::

    python scripts/bench_conv2d.py --sizes 64 512 --kernels 3 5 11 --plot docs/figures/conv2d_times.png
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy
from scipy import ndimage, signal

from medkit.filters import discrete_2d_convolution


def naive_correlate2d(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The textbook double loop over output pixels ("valid" mode), for comparison only."""
    kh, kw = kernel.shape
    out = np.empty((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(image[i : i + kh, j : j + kw] * kernel)
    return out


def textbook_correlate2d(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The textbook four nested loops ("valid" mode): one Python multiply-add per output pixel and kernel element."""
    kh, kw = kernel.shape
    out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            total = 0.0
            for m in range(kh):
                for n in range(kw):
                    total += image[i + m, j + n] * kernel[m, n]
            out[i, j] = total
    return out


def best_time(fn: Callable[[], np.ndarray], repeats: int) -> tuple[float, np.ndarray]:
    """Best wall-clock seconds of ``repeats`` calls, and the last result."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_case(size: int, k: int, repeats: int, naive_max: int, rng: np.random.Generator) -> dict:
    image = rng.random((size, size))
    kernel = rng.random((k, k))
    medkit_s, ours = best_time(lambda: discrete_2d_convolution(image, kernel, "valid"), repeats)
    scipy_s, ref = best_time(lambda: signal.correlate2d(image, kernel, "valid"), repeats)
    flipped = kernel[::-1, ::-1].copy()  # convolving with the flipped kernel is correlating with the kernel
    convolve2d_s, conv = best_time(lambda: signal.convolve2d(image, flipped, "valid"), repeats)
    lo, hi = (k - 1) // 2, k // 2  # ndimage centres the kernel; the valid part leaves k // 2 pixels each side
    ndimage_s, nd = best_time(
        lambda: ndimage.convolve(image, flipped, mode="constant")[lo : size - hi, lo : size - hi], repeats
    )
    case = {
        "image": f"{size}x{size}",
        "kernel": f"{k}x{k}",
        "medkit_s": round(medkit_s, 6),
        "scipy_s": round(scipy_s, 6),
        "textbook_loop_s": None,
        "naive_loop_s": None,
        "convolve2d_s": round(convolve2d_s, 6),
        "ndimage_convolve_s": round(ndimage_s, 6),
        "ratio_scipy_over_medkit": round(scipy_s / medkit_s, 2),
        "ratio_convolve2d_over_medkit": round(convolve2d_s / medkit_s, 2),
        "ratio_ndimage_over_medkit": round(ndimage_s / medkit_s, 2),
        "ratio_textbook_over_medkit": None,
        "ratio_naive_over_medkit": None,
        "max_abs_diff_vs_scipy": float(np.abs(ours - ref).max()),
        "max_abs_diff_vs_convolve2d": float(np.abs(ours - conv).max()),
        "max_abs_diff_vs_ndimage": float(np.abs(ours - nd).max()),
    }
    if size <= naive_max:
        naive_s, naive = best_time(lambda: naive_correlate2d(image, kernel), min(repeats, 2))
        case["naive_loop_s"] = round(naive_s, 6)
        case["ratio_naive_over_medkit"] = round(naive_s / medkit_s, 1)
        case["max_abs_diff_naive_vs_scipy"] = float(np.abs(naive - ref).max())
        textbook_s, textbook = best_time(lambda: textbook_correlate2d(image, kernel), 1)
        case["textbook_loop_s"] = round(textbook_s, 6)
        case["ratio_textbook_over_medkit"] = round(textbook_s / medkit_s, 1)
        case["max_abs_diff_textbook_vs_scipy"] = float(np.abs(textbook - ref).max())
    return case


# method label -> its seconds key in a case, in drawing order
METHODS: dict[str, str] = {
    "medkit (stride tricks)": "medkit_s",
    "scipy.signal.correlate2d": "scipy_s",
    "scipy.signal.convolve2d": "convolve2d_s",
    "scipy.ndimage.convolve": "ndimage_convolve_s",
    "window loop": "naive_loop_s",
    "textbook loop": "textbook_loop_s",
}


def plot_cases(cases: Sequence[dict[str, Any]], path: str | Path) -> Any:
    """Draws the cases' times to ``path``: one panel per image size, milliseconds (log axis) against the kernel size,
    one line per method that ran at that size (the loops only up to ``--naive-max``). Returns the figure.

    Args:
        cases: the ``cases`` list of the printed JSON.
        path: the PNG to write (its folder is made).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    sizes = list(dict.fromkeys(c["image"] for c in cases))
    fig, axes = plt.subplots(1, len(sizes), figsize=(5.2 * len(sizes), 4.2), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        rows = [c for c in cases if c["image"] == size]
        kernels = [int(c["kernel"].split("x")[0]) for c in rows]
        for label, key in METHODS.items():
            if all(c[key] is not None for c in rows):
                ax.plot(kernels, [c[key] * 1e3 for c in rows], marker="o", label=label)
        ax.set(title=f"{size} image, 'valid' output", xlabel="kernel size (pixels a side)", ylabel="time (ms)")
        ax.set_yscale("log")
        # labels at 1, 2 and 5 of each decade, written 20 (not 2 x 10^1)
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks(kernels)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 512], help="square image sizes")
    ap.add_argument("--kernels", type=int, nargs="+", default=[3, 5, 11], help="square kernel sizes")
    ap.add_argument("--repeats", type=int, default=5, help="runs per method; the best is reported")
    ap.add_argument("--naive-max", type=int, default=64, help="largest image size the two loops run on")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", type=Path, default=None, help="also draw the times to this PNG")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    result = {
        "mode": "valid",
        "dtype": "float64",
        "repeats": args.repeats,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "machine": platform.machine(),
        "cases": [bench_case(s, k, args.repeats, args.naive_max, rng) for s in args.sizes for k in args.kernels],
    }
    print(json.dumps(result, indent=2))
    if args.plot is not None:
        plot_cases(result["cases"], args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
