"""Benchmark one MobileNet v1 training step with NCHW vs channels_last (NHWC) weights, as medmnist_cls trains it.

A step is forward, BCE-with-logits loss, backward and an Adam update on a random ``(batch, 1, size, size)`` batch. The
NCHW network is the baseline, measured in the same run; the ratio above 1 means channels_last is faster. Times are the
median of ``--repeats`` steps after ``--warmup`` steps, per ``keep_resolution`` value.

Prints one JSON object. Example (from the repo root)::

    python scripts/bench_mobilenet_layout.py --keep-resolution 0 2 --batch 128 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from medkit.networks import MobileNetV1


def step_seconds(keep_resolution: int, channels_last: bool, batch: int, size: int, warmup: int, repeats: int) -> float:
    """Median wall time of one training step."""
    torch.manual_seed(0)
    net = MobileNetV1(1, 1, dropout=0.2, keep_resolution=keep_resolution)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = torch.randn(batch, 1, size, size), torch.rand(batch, 1)
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        loss = F.binary_cross_entropy_with_logits(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keep-resolution", type=int, nargs="+", default=[0, 2])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args(argv)
    rows = []
    for k in a.keep_resolution:
        nchw = step_seconds(k, False, a.batch, a.size, a.warmup, a.repeats)
        nhwc = step_seconds(k, True, a.batch, a.size, a.warmup, a.repeats)
        rows.append(
            {
                "keep_resolution": k,
                "nchw_ms_per_step": round(nchw * 1e3, 1),
                "channels_last_ms_per_step": round(nhwc * 1e3, 1),
                "ratio_channels_last_vs_nchw": round(nchw / nhwc, 2),
            }
        )
    result = {
        "batch": a.batch,
        "size": a.size,
        "repeats": a.repeats,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "results": rows,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
