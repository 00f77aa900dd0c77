"""Training statistics kept on the device, so that a step needs no host read.

Reading a GPU value on the host makes the CPU wait for the GPU; the loss, its terms, the skip
count and the run of non-finite losses are summed on the device and read once per log interval
(over all processes under torchrun).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from amsnet.training.distributed import Distributed


class DeviceStatistics:
    """Loss sums and skip counters kept on the device; read on the host every log interval."""

    def __init__(self, device: torch.device, skipped_steps: int = 0, bad_in_a_row: int = 0) -> None:
        self.device = device
        self.loss_sum = torch.zeros((), device=device)
        self.finite_steps = torch.zeros((), device=device)
        self.terms: dict[str, torch.Tensor] = {}
        self.skipped = torch.tensor(skipped_steps, device=device, dtype=torch.float32)
        self.bad_in_a_row = torch.tensor(bad_in_a_row, device=device, dtype=torch.float32)
        self.worst_run = self.bad_in_a_row.clone()

    def add(
        self,
        loss: torch.Tensor,
        terms: dict[str, torch.Tensor],
        bad_loss: torch.Tensor,
        skipped: torch.Tensor,
    ) -> None:
        zero = torch.zeros((), device=self.device)
        self.loss_sum += torch.where(bad_loss, zero, loss.float())
        self.finite_steps += (~bad_loss).float()
        for name, value in terms.items():
            total = self.terms.setdefault(name, torch.zeros((), device=self.device))
            total += torch.where(bad_loss, zero, value.detach().float())
        self.skipped += skipped.float()
        self.bad_in_a_row = (self.bad_in_a_row + 1) * bad_loss.float()
        self.worst_run = torch.maximum(self.worst_run, self.bad_in_a_row)

    def read(self, context: Distributed) -> dict[str, Any]:
        """Means over the interval (and over processes), then reset the interval sums."""
        names = sorted(self.terms)
        sums = torch.stack([self.loss_sum, self.finite_steps, *(self.terms[n] for n in names)])
        runs = torch.stack([self.worst_run, self.skipped, self.bad_in_a_row])
        context.all_reduce(sums, "sum")
        context.all_reduce(runs, "max")
        values = sums.tolist()
        worst, skipped, bad_in_a_row = (int(v) for v in runs.tolist())
        count = values[1]
        result: dict[str, Any] = {"loss": values[0] / count if count else math.nan}
        for name, total in zip(names, values[2:], strict=True):
            result[name] = total / count if count else math.nan
        result["worst_run"] = worst
        result["skipped_steps"] = skipped
        result["bad_in_a_row"] = bad_in_a_row
        self.loss_sum.zero_()
        self.finite_steps.zero_()
        for total in self.terms.values():
            total.zero_()
        self.worst_run.copy_(self.bad_in_a_row)
        return result

    def counters(self) -> dict[str, int]:
        """``skipped_steps`` and ``bad_in_a_row`` (one host read)."""
        skipped, bad_in_a_row = torch.stack([self.skipped, self.bad_in_a_row]).tolist()
        return {"skipped_steps": int(skipped), "bad_in_a_row": int(bad_in_a_row)}
