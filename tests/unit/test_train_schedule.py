"""Learning-rate schedules: PyTorch's formulas, stepped per iteration, as pure functions."""

from __future__ import annotations

import pytest
import torch

from amsnet.config import ScheduleConfig
from amsnet.errors import ConfigError
from amsnet.training.schedule import LearningRateSchedule


def torch_rates(make_scheduler, steps: int, lr: float = 1.0) -> list[float]:
    """The rate of every step of a PyTorch scheduler stepped once per iteration."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = make_scheduler(optimizer)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


@pytest.mark.parametrize(("period", "mult"), [(7, 1), (5, 2)])
def test_cosine_restarts_equal_pytorchs_warm_restarts(period, mult):
    config = ScheduleConfig(name="cosine_restarts", period=period, period_mult=mult, min_lr=0.1)
    ours = LearningRateSchedule(config, 1.0, 60)
    expected = torch_rates(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            o, T_0=period, T_mult=mult, eta_min=0.1
        ),
        60,
    )
    assert [ours(step) for step in range(60)] == pytest.approx(expected, abs=1e-12)


def test_cosine_equals_pytorchs_annealing_over_the_run():
    ours = LearningRateSchedule(ScheduleConfig(name="cosine", min_lr=0.01), 0.5, 40)
    expected = torch_rates(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=40, eta_min=0.01), 40, 0.5
    )
    assert [ours(step) for step in range(40)] == pytest.approx(expected, abs=1e-12)


def test_step_decay_equals_pytorchs_step_lr():
    ours = LearningRateSchedule(ScheduleConfig(name="step", step_size=8, gamma=0.1), 1e-4, 30)
    expected = torch_rates(
        lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=8, gamma=0.1), 30, 1e-4
    )
    assert [ours(step) for step in range(30)] == pytest.approx(expected, rel=1e-12)


def test_constant_with_linear_warmup():
    schedule = LearningRateSchedule(ScheduleConfig(warmup_steps=4), 2.0, 10)
    assert [schedule(step) for step in range(6)] == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]


def test_the_rate_depends_on_the_step_only():
    config = ScheduleConfig(name="cosine_restarts", period=3, period_mult=3)
    first, second = LearningRateSchedule(config, 1.0, 100), LearningRateSchedule(config, 1.0, 100)
    forward = [first(step) for step in range(50)]
    backward = [second(step) for step in reversed(range(50))][::-1]
    assert forward == backward


def test_bad_settings():
    with pytest.raises(ConfigError, match="min_lr"):
        LearningRateSchedule(ScheduleConfig(min_lr=1.0), 0.1, 10)
    with pytest.raises(ConfigError, match="at least one step"):
        LearningRateSchedule(ScheduleConfig(), 0.1, 0)
