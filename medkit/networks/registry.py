"""A name -> builder registry so configs, scripts and one parametrized test can reach every medkit network."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from medkit.utils import build_by_name

__all__ = ["NETWORKS", "get_network", "register_network"]

NETWORKS: dict[str, Callable[..., nn.Module]] = {}


def register_network(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Class/function decorator adding a network builder under ``name``."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in NETWORKS:
            raise ValueError(f"network {name!r} is already registered")
        NETWORKS[name] = builder
        return builder

    return wrap


def get_network(name: str, **kwargs) -> nn.Module:
    """Builds the registered network ``name`` with ``kwargs``.

    Raises:
        ValueError: if ``name`` is unknown; the message lists the known names.
    """
    return build_by_name(NETWORKS, name, "network", **kwargs)
