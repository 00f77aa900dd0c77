"""The random-number streams of a training run, and how they survive a resume.

Every random draw of a run comes from one of three places:

* the crops: item ``i`` draws from a generator seeded with ``(seed, epoch, index)``
  (:mod:`amsnet.training.datasets`): a function of the step, nothing to store;
* the masks (AMSNet's partitions): step ``s`` of process ``rank`` re-seeds the process's mask
  generator with :func:`mask_seed` ``(seed, rank, s)``, on the training device: again a
  function of the step, so a resumed run draws the masks of the uninterrupted one, and each
  process of a multi-GPU run draws its own;
* PyTorch's global generators (dropout, if a backbone uses it): their states are captured by
  :func:`capture_rng` into the resume state (as uint8 tensors, one entry per process) and put
  back by :func:`restore_rng`.

The resume state (``state.pt``, written by :func:`amsnet.checkpoint.save_state`) holds:
``step`` (optimisation steps done), ``model`` (the weights), ``optimizer``, ``scaler`` (float16
loss scaling) or ``None``, ``ema`` (the weight average) or ``None``, ``rng`` (one
:func:`capture_rng` per process), ``best`` (``{"psnr", "step"}``), ``counters``
(``{"skipped_steps", "bad_in_a_row"}``), ``data`` (``{"next_step", "crops_per_step"}``: the
data position), ``world_size`` and ``config`` (the resolved configuration).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from amsnet.errors import CheckpointError


def mask_seed(seed: int, rank: int, step: int) -> int:
    """The seed of process ``rank``'s mask generator at step ``step`` (63 bits).

    The three numbers are mixed by :class:`numpy.random.SeedSequence`, so neighbouring steps
    and ranks get unrelated streams.

    Example:
        >>> mask_seed(0, 0, 5) == mask_seed(0, 0, 5) != mask_seed(0, 1, 5)
        True
    """
    # The constant keeps these streams apart from the crops' (seed, epoch, index) streams.
    words = np.random.SeedSequence([seed, rank, step, 0x6D61736B]).generate_state(2, np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def process_seed(seed: int, rank: int) -> int:
    """The seed of process ``rank``'s global PyTorch generator after the model is built."""
    words = np.random.SeedSequence([seed, rank, 0x676C6F62]).generate_state(2, np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def capture_rng() -> dict[str, Any]:
    """This process's global generator states: ``{"torch": uint8 tensor, "cuda": [tensors]}``.

    CUDA states are captured only when CUDA has been initialised (capturing would start it).
    """
    cuda = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = [state.clone() for state in torch.cuda.get_rng_state_all()]
    return {"torch": torch.get_rng_state().clone(), "cuda": cuda}


def restore_rng(state: dict[str, Any]) -> None:
    """Put back what :func:`capture_rng` returned.

    Raises:
        CheckpointError: the stored states are malformed.
    """
    try:
        torch.set_rng_state(state["torch"].to("cpu", torch.uint8))
        cuda = state.get("cuda") or []
        if cuda and torch.cuda.is_available():
            count = min(len(cuda), torch.cuda.device_count())
            for index in range(count):
                torch.cuda.set_rng_state(cuda[index].to("cpu", torch.uint8), index)
    except (KeyError, TypeError, RuntimeError, AttributeError) as error:
        raise CheckpointError(
            f"the random-number states in the resume state are malformed ({error})"
        ) from None
