"""Loading a model for inference: weights file -> method on the best device, ready to run."""

from __future__ import annotations

import os

from amsnet.build import Method
from amsnet.checkpoint import load_pretrained
from amsnet.runtime import prepare_for_inference, resolve_device, tune_cpu_allocator


def load_for_inference(weights: str | os.PathLike[str], device: str = "auto") -> Method:
    """Load a weights file on ``device`` (``auto``: CUDA, then MPS, then CPU) for inference.

    Also raises glibc's allocator thresholds on the CPU (see
    :func:`amsnet.runtime.tune_cpu_allocator`) and puts the weights in the memory format that
    runs fastest there (:func:`amsnet.runtime.prepare_for_inference`).

    Raises:
        CheckpointError: the file is missing, not an amsnet weights file, or corrupt.
        ConfigError: the device is unknown or unavailable.
    """
    target = resolve_device(device)
    tune_cpu_allocator()
    return prepare_for_inference(load_pretrained(weights, device=target), target)
