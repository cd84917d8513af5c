"""medkit: a MONAI-based toolkit for medical imaging research.

Bundles under ``bundles/`` reference this package by dotted path (``medkit.networks.UNet``), and after ``import medkit``
config expressions such as ``$medkit.data.prepare_nuclei_datalists(...)`` reach the subpackages (and ``medkit.report``,
which evaluate layers call) as attributes. Each is imported on its first access, so ``import medkit`` (and
``medkit --help``) loads neither torch nor MONAI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medkit import bundle, data, filters, handlers, inferers, losses, metrics, networks, report, transforms, utils
    from medkit.predictor import Predictor

__version__ = "0.1.0"

__all__ = [
    "Predictor",
    "__version__",
    "bundle",
    "data",
    "filters",
    "handlers",
    "inferers",
    "losses",
    "metrics",
    "networks",
    "report",
    "transforms",
    "utils",
]

_SUBPACKAGES = tuple(name for name in __all__ if name not in ("__version__", "Predictor"))


def __getattr__(name: str) -> Any:
    """Imports the subpackage ``name`` on first access (``medkit.data``, ``medkit.networks``, ...)."""
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    if name == "Predictor":  # the Python API for pipelines (medkit.predictor)
        return importlib.import_module(f"{__name__}.predictor").Predictor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SUBPACKAGES))
