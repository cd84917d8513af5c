"""Networks written for medkit. Each returns raw logits and follows MONAI's argument names."""

from __future__ import annotations

from medkit.networks.bilstm import BiLSTMClassifier
from medkit.networks.checkpoint import load_checkpoint, read_model_state
from medkit.networks.danq import DanQClassifier
from medkit.networks.ensemble import (
    FlipTTA,
    JointEnsemble,
    ProbabilityEnsemble,
    build_ensemble,
    find_member_checkpoints,
    mean_probability_logits,
)
from medkit.networks.layers import Linear
from medkit.networks.mlp import MLP
from medkit.networks.mobilenet import DepthwiseSeparableBlock, MobileNetV1
from medkit.networks.munet import mUnet
from medkit.networks.partial_load import load_matching_state_dict, load_pretrained
from medkit.networks.registry import NETWORKS, get_network, register_network
from medkit.networks.resnet_unet import ResNetUNet
from medkit.networks.reverse_complement import ReverseComplementAverage
from medkit.networks.unet import UNet
from medkit.networks.vgg import VGGTransfer, resolve_vgg_weights

register_network("unet")(UNet)
register_network("vgg_transfer")(VGGTransfer)
register_network("mobilenet_v1")(MobileNetV1)
register_network("mlp")(MLP)
register_network("bilstm")(BiLSTMClassifier)
register_network("munet")(mUnet)

__all__ = [
    "MLP",
    "NETWORKS",
    "BiLSTMClassifier",
    "DepthwiseSeparableBlock",
    "Linear",
    "MobileNetV1",
    "UNet",
    "VGGTransfer",
    "get_network",
    "mUnet",
    "register_network",
]

__all__ += ["resolve_vgg_weights"]

register_network("resnet_unet")(ResNetUNet)
__all__ += ["ResNetUNet"]


__all__ += ["load_matching_state_dict", "load_pretrained"]

__all__ += ["ProbabilityEnsemble", "find_member_checkpoints", "load_checkpoint", "read_model_state"]
__all__ += ["FlipTTA", "JointEnsemble", "build_ensemble", "mean_probability_logits"]

register_network("danq")(DanQClassifier)
__all__ += ["DanQClassifier", "ReverseComplementAverage"]
