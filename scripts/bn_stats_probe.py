"""Measures how far BatchNorm's moving-average statistics lag behind the current weights while MobileNet trains.

A plain PyTorch loop with the medmnist_cls settings (MobileNetV1, dropout 0.2, Adam 1e-3, batch 128, BCE, MedMNIST
normalisation, horizontal flips). After every epoch it prints one JSON line with the validation (AUC, ACC) in eval
mode with the moving averages (``running``), in eval mode after recomputing the statistics over the training images
with ``torch.optim.swa_utils.update_bn`` (``precise``) and in train mode (``batch``); every ``--detail_every``
epochs also the test figures and the BatchNorm layers whose running mean is furthest off (mean shift in standard
deviations, geometric-mean variance ratio).

Example:
    python scripts/bn_stats_probe.py /work/shared/data/medmnist/breastmnist.npz --epochs 30
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.optim.swa_utils import update_bn

from medkit.networks import MobileNetV1


def _load(path: str) -> dict[str, tuple[torch.Tensor, np.ndarray]]:
    data = np.load(path)
    out = {}
    for split in ("train", "val", "test"):
        images = (torch.tensor(data[f"{split}_images"], dtype=torch.float32)[:, None] / 255 - 0.5) / 0.5
        out[split] = (images, data[f"{split}_labels"].reshape(-1))
    return out


def _batches(images: torch.Tensor, size: int = 128) -> list[torch.Tensor]:
    return [images[i : i + size] for i in range(0, len(images), size)]


def _score(net: nn.Module, images: torch.Tensor, labels: np.ndarray, mode: str, train_images: torch.Tensor) -> list:
    model = net
    if mode == "precise":
        model = copy.deepcopy(net)
        update_bn(_batches(train_images), model)
    model.train(mode == "batch")
    with torch.no_grad():
        probs = torch.sigmoid(model(images)).reshape(-1).numpy()
    net.train()
    return [round(float(roc_auc_score(labels, probs)), 3), round(float(((probs > 0.5) == labels).mean()), 3)]


def _stat_errors(net: nn.Module, train_images: torch.Tensor, top: int = 4) -> list:
    exact = copy.deepcopy(net)
    update_bn(_batches(train_images), exact)
    errors = []
    for (name, a), (_, b) in zip(net.named_modules(), exact.named_modules()):
        if isinstance(a, nn.BatchNorm2d):
            shift = ((a.running_mean - b.running_mean).abs() / b.running_var.sqrt().clamp_min(1e-5)).mean().item()
            ratio = (a.running_var / b.running_var.clamp_min(1e-8)).log().abs().mean().exp().item()
            errors.append([name, round(shift, 3), round(ratio, 3)])
    return sorted(errors, key=lambda e: -e[1])[:top]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("npz", help="a binary MedMNIST .npz (train/val/test images and labels)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--detail_every", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    data = _load(args.npz)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data["train"], data["val"], data["test"]
    targets = torch.tensor(y_train, dtype=torch.float32)
    net = MobileNetV1(1, 1, dropout=0.2)
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(x_train))
        for i in range(0, len(x_train) - 127, 128):
            idx = order[i : i + 128]
            images = x_train[idx]
            flip = torch.rand(len(images)) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
            loss = loss_fn(net(images).reshape(-1), targets[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        row = {"epoch": epoch, "loss": round(loss.item(), 3), "seconds": round(time.perf_counter() - start)}
        row.update({m: _score(net, x_val, y_val, m, x_train) for m in ("running", "precise", "batch")})
        if epoch % args.detail_every == 0 or epoch == args.epochs:
            row["test_running"] = _score(net, x_test, y_test, "running", x_train)
            row["test_precise"] = _score(net, x_test, y_test, "precise", x_train)
            row["furthest_layers"] = _stat_errors(net, x_train)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
