"""Multi-GPU and multi-node training with PyTorch's DistributedDataParallel, under ``torchrun``.

``torchrun`` starts one process per GPU and gives each the environment variables ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``. :func:`setup_distributed`
reads them: with ``WORLD_SIZE`` > 1 it joins the process group (NCCL on CUDA, where process
``LOCAL_RANK`` takes GPU ``LOCAL_RANK``; Gloo on the CPU) and returns a :class:`Distributed`
describing this process. Without them (a plain ``amsnet train``) nothing is initialised and
every collective below is a no-op.

Every process builds the same model from the same seed; DDP also broadcasts rank 0's weights
when it wraps the model and averages the gradients in every backward pass, so the replicas stay
identical. :func:`fingerprint` hashes a replica's weights so that this can be checked.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from amsnet.errors import ConfigError
from amsnet.runtime import resolve_device

log = logging.getLogger(__name__)

# Rank 0 validates and writes checkpoints while the others wait at a barrier; a long
# validation must not hit the process group's timeout.
PROCESS_GROUP_TIMEOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class Distributed:
    """This process's place in a (possibly single-process) run.

    Attributes:
        rank: global rank, 0 for the process that logs and writes files.
        world_size: number of processes.
        local_rank: rank on this machine (the GPU index).
        initialised_here: whether :func:`setup_distributed` created the process group (and
            :func:`shutdown_distributed` should destroy it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def enabled(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: logs, validates and saves."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every process (no-op for a single process)."""
        if self.enabled:
            dist.barrier()

    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Reduce ``tensor`` in place over all processes (``sum`` or ``max``) and return it."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
        return tensor

    def broadcast_buffers(self, module: nn.Module) -> None:
        """Give every process rank 0's buffers (batch-norm statistics).

        DDP broadcasts them at the start of every forward pass, but each process then
        updates its own statistics with its own crops: after the last step the replicas
        differ by that update. Checkpoints and the end of a run call this first.
        """
        if self.enabled:
            for buffer in module.buffers():
                dist.broadcast(buffer, src=0)

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value`` (picklable), in rank order, on every process."""
        if not self.enabled:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values


def _environment_integer(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"environment variable {name}={text!r} is not an integer") from None


def setup_distributed(device_name: str = "auto") -> tuple[Distributed, torch.device]:
    """Join the ``torchrun`` process group if there is one; choose this process's device.

    Args:
        device_name: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``. Under ``torchrun``
            with CUDA, process ``LOCAL_RANK`` uses GPU ``LOCAL_RANK`` whatever index is given.

    Returns:
        ``(Distributed, device)``.

    Raises:
        ConfigError: bad environment variables, or more processes on a machine than GPUs.
    """
    world_size = _environment_integer("WORLD_SIZE", 1)
    device = resolve_device(device_name)
    if world_size <= 1:
        return Distributed(), device
    rank = _environment_integer("RANK", 0)
    local_rank = _environment_integer("LOCAL_RANK", 0)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"process LOCAL_RANK={local_rank} has no GPU: this machine has "
                f"{torch.cuda.device_count()}; start torchrun with --nproc_per_node "
                f"{torch.cuda.device_count()} or fewer"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise ConfigError(
            f"multi-process training runs on CUDA (NCCL) or the CPU (Gloo), not {device.type}; "
            "set train.device to cuda or cpu"
        )
    initialised_here = False
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=PROCESS_GROUP_TIMEOUT)
        initialised_here = True
    log.info("process %d of %d (local rank %d) on %s", rank, world_size, local_rank, device)
    return Distributed(rank, world_size, local_rank, initialised_here), device


def shutdown_distributed(context: Distributed) -> None:
    """Leave the process group if :func:`setup_distributed` created it."""
    if context.initialised_here and dist.is_initialized():
        # All ranks leave together: a rank that tears Gloo down while its peer still holds
        # the connection aborted the peer ("terminate called without an active exception",
        # SIGABRT) in about one run of three of the two-process test.
        dist.barrier()
        dist.destroy_process_group()


def fingerprint(module: nn.Module) -> str:
    """SHA-256 of a module's state dict (names, dtypes, shapes and values), hexadecimal.

    Two replicas with the same fingerprint hold bit-identical weights and buffers.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        value = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
