"""The learning rate as a pure function of the step.

A schedule that depends on nothing but the step number cannot drift when a run is resumed:
step ``N`` of a resumed run has exactly the rate of step ``N`` of the uninterrupted run, and the
resume state needs no scheduler object. The formulas are PyTorch's, stepped once per
optimisation step (iteration):

* ``constant``: ``lr``;
* ``cosine``: ``CosineAnnealingLR`` with ``T_max`` = the run's steps;
* ``cosine_restarts``: ``CosineAnnealingWarmRestarts`` with ``T_0 = period``,
  ``T_mult = period_mult``, ``eta_min = min_lr``. The AMSNet paper names this scheduler; the
  official code uses ``CosineAnnealingLR(T_max=25000)`` stepped once per *epoch*, which over
  its 100 epochs leaves the rate at about 1e-4 throughout (see ``docs/training.md``);
* ``step``: ``StepLR``, the rate times ``gamma`` every ``step_size`` steps (AP-BSN: x0.1
  every 8 epochs).

A linear warm-up multiplies the rate by ``(step + 1) / warmup_steps`` during the first
``warmup_steps`` steps.

The quick fit (:mod:`amsnet.training.fit`) may run for a time budget, whose number of steps is
not known in advance: its rate is a function of the fraction of the budget spent,
:func:`cosine_factor`.
"""

from __future__ import annotations

import math

from amsnet.config import ScheduleConfig
from amsnet.errors import ConfigError


class LearningRateSchedule:
    """``schedule(step)``: the learning rate of optimisation step ``step`` (0-based).

    Args:
        config: the ``train.schedule`` section.
        lr: the base (peak) learning rate.
        total_steps: the run's number of steps (the ``cosine`` decay spans them).

    Example:
        >>> schedule = LearningRateSchedule(ScheduleConfig(name="step", step_size=2), 1.0, 6)
        >>> [round(schedule(step), 6) for step in range(6)]
        [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    """

    def __init__(self, config: ScheduleConfig, lr: float, total_steps: int) -> None:
        if total_steps < 1:
            raise ConfigError(f"a schedule needs at least one step, got {total_steps}")
        if config.min_lr > lr:
            raise ConfigError(
                f"train.schedule.min_lr {config.min_lr} is above train.optimizer.lr {lr}; "
                "lower min_lr"
            )
        self.config = config
        self.lr = lr
        self.total_steps = total_steps

    def __call__(self, step: int) -> float:
        if step < 0:
            raise ConfigError(f"step must be >= 0, got {step}")
        c = self.config
        if c.name == "constant":
            rate = self.lr
        elif c.name == "cosine":
            rate = self._cosine(step, self.total_steps)
        elif c.name == "cosine_restarts":
            assert c.period is not None  # checked by ScheduleConfig
            position, period = step, c.period
            # Walk the cycles (their number grows logarithmically with period_mult > 1).
            while position >= period:
                position -= period
                period *= c.period_mult
            rate = self._cosine(position, period)
        else:
            assert c.step_size is not None  # checked by ScheduleConfig
            rate = self.lr * c.gamma ** (step // c.step_size)
        if c.warmup_steps and step < c.warmup_steps:
            rate *= (step + 1) / c.warmup_steps
        return rate

    def _cosine(self, position: int, period: int) -> float:
        low = self.config.min_lr
        return low + (self.lr - low) * (1.0 + math.cos(math.pi * position / period)) / 2.0


def cosine_factor(progress: float, floor: float = 0.01) -> float:
    """Learning-rate multiplier of a budget ``progress`` in ``[0, 1]`` spent (clamped): a
    cosine from 1 at 0 down to ``floor`` at 1 (the quick fit's schedule)."""
    progress = min(max(progress, 0.0), 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
