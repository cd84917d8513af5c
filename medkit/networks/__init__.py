"""Networks written for medkit. Each returns raw logits and follows MONAI's argument names."""

from __future__ import annotations

from medkit.networks.bilstm import BiLSTMClassifier
from medkit.networks.registry import NETWORKS, get_network, register_network
from medkit.networks.unet import UNet

register_network("unet")(UNet)
register_network("bilstm")(BiLSTMClassifier)

__all__ = ["NETWORKS", "BiLSTMClassifier", "UNet", "get_network", "register_network"]
