"""Training: the experiment trainer (``Trainer``) and the minimal fitting loop of the demo.

``Trainer`` runs an experiment configuration (:mod:`amsnet.config`) with validation,
checkpoints, exact resume, mixed precision and multi-GPU support; ``fit``
(:mod:`amsnet.training.fit`) is the small loop the demo and zero-shot fits use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrainResult", "Trainer", "load_config"]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing amsnet.training.fit does not build the whole trainer.
    if name in ("Trainer", "TrainResult"):
        from amsnet.training import trainer

        return getattr(trainer, name)
    if name == "load_config":
        from amsnet.config import load_config

        return load_config
    raise AttributeError(f"module 'amsnet.training' has no attribute {name!r}")
