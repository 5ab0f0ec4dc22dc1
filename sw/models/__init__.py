"""Models shipped with FirstSpike, each made by the command in its provenance."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["shipped_model_path", "SHIPPED"]

#: Name -> file of each shipped model.
SHIPPED = {"digits": "digits.npz", "fashion-mnist": "fashion-mnist.npz", "fashion-mnist-cnn": "fashion-mnist-cnn.npz"}


def shipped_model_path(name: str) -> Path:
    """Path of a shipped model by name (``digits``)."""
    return Path(str(resources.files(__name__) / SHIPPED[name]))
