"""Transfer learning from an ImageNet VGG16: frozen convolutional features and a small trainable head.

Reference:
    K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition", ICLR 2015,
    https://arxiv.org/abs/1409.1556.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torchvision
from torch import nn

from medkit.networks.weights import TORCHVISION_URL, hub_checkpoint_path, load_hub_checkpoint

__all__ = ["VGG16_IMAGENET_FILE", "VGG16_IMAGENET_URL", "VGGTransfer", "vgg16_weights_path"]
__all__ += ["resolve_vgg_weights"]

logger = logging.getLogger(__name__)

# torchvision's VGG16_Weights.IMAGENET1K_V1, spelled out so nothing has to be fetched to know where it goes
VGG16_IMAGENET_FILE = "vgg16-397923af.pth"
VGG16_IMAGENET_URL = f"{TORCHVISION_URL}{VGG16_IMAGENET_FILE}"
_FEATURE_DIM = 4096  # width of VGG16's penultimate fully connected layer


def vgg16_weights_path() -> Path:
    """Where the ImageNet VGG16 weights are read from: ``$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth``.

    This is the file torchvision's own cache uses, so a copy downloaded by torchvision elsewhere can be reused.
    """
    return hub_checkpoint_path(VGG16_IMAGENET_FILE)


class VGGTransfer(nn.Module):
    """VGG16 (Simonyan & Zisserman 2015) with frozen ImageNet features and a new classification head.

    The convolutional ``features``, the adaptive 7x7 average pool and the first two fully connected layers of
    torchvision's VGG16 (``classifier``, up to the 4096-d feature vector) form the *frozen* part. With ``freeze``
    true its parameters have ``requires_grad=False``, it stays in eval mode when the module is put in training mode
    (its dropout layers stay off), and it runs under ``torch.no_grad()`` so training back-propagates through the
    head only. If the input itself requires grad (saliency maps), the frozen part is run with autograd on so the
    gradient can reach the input; its weights still get no gradient.

    The trainable ``head`` is ``Linear(4096, hidden_channels) -> ReLU [-> Dropout] -> Linear(hidden_channels,
    out_channels)``. With ``last_layer_only`` it is instead one fresh ``Linear(4096, out_channels)``: stock VGG16
    whose last layer alone is fine-tuned, or, with ``freeze=False``, stock VGG16 trained end to end (from random init
    with ``weights=None``), the two arms of the course's FashionMNIST comparison.

    Shape contract:
        input ``(B, in_channels, H, W)`` with ``H, W >= 32`` (five 2x poolings); output ``(B, out_channels)``, raw
        logits. Greyscale input (``in_channels=1``) is repeated to three channels. Normalise the input with the
        ImageNet mean and std when ``weights="imagenet"``.

    Args:
        in_channels: 1 (greyscale, repeated to RGB) or 3.
        out_channels: number of classes.
        hidden_channels: width of the head's hidden layer (ignored with ``last_layer_only``).
        dropout: dropout probability after the head's hidden ReLU (0 disables it).
        weights: ``"imagenet"`` to load torchvision's IMAGENET1K_V1 file from :func:`vgg16_weights_path` (never
            downloaded), or ``None`` for random initialisation.
        freeze: freeze the VGG16 part; false fine-tunes the whole network.
        last_layer_only: replace VGG16's last layer by a fresh one instead of adding the MLP head; with ``freeze`` it
            alone trains, without it the whole stock network trains.

    Raises:
        FileNotFoundError: ``weights="imagenet"`` and the weights file is missing (the message gives the path and URL).

    Example:
        >>> net = VGGTransfer(in_channels=1, out_channels=2, weights=None)
        >>> net(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 2])
        >>> optimizer = torch.optim.Adam(net.trainable_parameters(), lr=1e-3)
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 2,
        hidden_channels: int = 2048,
        dropout: float = 0.0,
        *,
        weights: str | None = "imagenet",
        freeze: bool = True,
        last_layer_only: bool = False,
    ) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 (greyscale) or 3 (RGB), got {in_channels}")
        if out_channels < 1 or hidden_channels < 1:
            raise ValueError(f"out_channels and hidden_channels must be >= 1, got {out_channels}, {hidden_channels}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if weights not in ("imagenet", None):
            raise ValueError(f"weights must be 'imagenet' or None, got {weights!r}")
        self.in_channels = int(in_channels)
        self.freeze = bool(freeze)

        if weights == "imagenet":
            state = load_hub_checkpoint(VGG16_IMAGENET_FILE, "ImageNet VGG16")
            with torch.device("meta"):  # skip the random init of 138M parameters that are overwritten anyway
                vgg = torchvision.models.vgg16(weights=None)
            vgg.load_state_dict(state, assign=True)
        else:
            vgg = torchvision.models.vgg16(weights=None)
        if weights is None and freeze:
            logger.warning("VGGTransfer with weights=None and freeze=True: the frozen features are random")
        self.features = vgg.features
        self.avgpool = vgg.avgpool
        self.classifier = vgg.classifier[:6]  # up to the 4096-d ReLU/dropout output
        if last_layer_only:
            self.head: nn.Module = nn.Linear(_FEATURE_DIM, out_channels)
        else:
            head: list[nn.Module] = [nn.Linear(_FEATURE_DIM, hidden_channels), nn.ReLU(inplace=True)]
            if dropout > 0:
                head.append(nn.Dropout(dropout))
            self.head = nn.Sequential(*head, nn.Linear(hidden_channels, out_channels))

        if self.freeze:
            for module in (self.features, self.classifier):
                module.requires_grad_(False)
            self.train(self.training)

    def train(self, mode: bool = True) -> VGGTransfer:
        """Sets training mode as ``nn.Module.train`` does, but keeps the frozen part in eval mode."""
        super().train(mode)
        if self.freeze:
            self.features.eval()
            self.classifier.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters to give the optimizer: the head's when frozen, all of them otherwise."""
        return [p for p in self.parameters() if p.requires_grad]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The 4096-d VGG16 feature vector ``(B, 4096)`` of an input ``(B, in_channels, H, W)``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (B, {self.in_channels}, H, W), got shape {x.shape}")
        if self.in_channels == 1:
            x = x.expand(-1, 3, -1, -1)
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.freeze and not x.requires_grad:
            with torch.no_grad():
                feats = self.embed(x)
        else:
            feats = self.embed(x)
        return self.head(feats)


def resolve_vgg_weights(weights: str | None = "auto") -> str | None:
    """Turns a bundle's ``weights`` setting into :class:`VGGTransfer`'s ``weights`` argument.

    Args:
        weights: ``"auto"``: ImageNet when :func:`vgg16_weights_path` exists, otherwise random initialisation with a
            prominent warning naming the file and its URL (so a fresh machine still runs); ``"imagenet"``: ImageNet,
            required (``VGGTransfer`` raises ``FileNotFoundError`` naming the file when it is missing); ``None``,
            ``"none"`` or ``"random"``: random initialisation.

    Returns:
        ``"imagenet"`` or ``None``.
    """
    choice = "none" if weights is None else str(weights).strip().lower()
    if choice in ("none", "random"):
        return None
    if choice == "imagenet":
        return "imagenet"
    if choice != "auto":
        raise ValueError(f"weights must be 'auto', 'imagenet', 'none' or None, got {weights!r}")
    path = vgg16_weights_path()
    if path.is_file():
        return "imagenet"
    logger.warning(
        "\n%s\nWARNING: ImageNet VGG16 weights not found at %s, so the FROZEN VGG16 features are RANDOM and only the "
        "head learns: expect much weaker results than transfer learning gives. Download %s to that path (the folder is "
        "$TORCH_HOME/hub/checkpoints) to use them, or pass --weights imagenet to make a missing file an error.\n%s",
        "=" * 100,
        path,
        VGG16_IMAGENET_URL,
        "=" * 100,
    )
    return None
