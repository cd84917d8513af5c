"""medkit: a MONAI-based toolkit for medical imaging research.

Bundles under ``bundles/`` reference this package by dotted path (``medkit.networks.UNet``), so importing it makes
the subpackages available to config expressions such as ``$medkit.data.prepare_nuclei_datalists(...)``.
"""

from __future__ import annotations

from medkit import data, filters, handlers, inferers, losses, metrics, networks, transforms, utils

__version__ = "0.1.0"

__all__ = ["__version__", "data", "filters", "handlers", "inferers", "networks", "transforms", "utils"]

__all__ += ["metrics"]
__all__ += ["losses"]
