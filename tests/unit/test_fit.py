"""The small fitting loop: budgets, learning-rate schedule, non-finite losses."""

from __future__ import annotations

import pytest
import torch

from amsnet.errors import ConfigError
from amsnet.methods import AMSNet, APBSN
from amsnet.nets import create_net
from amsnet.training.fit import cosine_factor, fit
from tests.nets_tiny import TINY


def sampler(generator: torch.Generator) -> torch.Tensor:
    return torch.rand(2, 3, 20, 20, generator=generator)


def test_fit_runs_the_given_steps_and_changes_the_weights(generator):
    method = AMSNet(create_net("dncnn", preset=None, **TINY["dncnn"]))
    before = [p.detach().clone() for p in method.parameters()]
    result = fit(method, sampler, generator=generator, steps=5, log_every=2)
    assert result.steps == 5 and result.skipped == 0
    assert [s for s, _ in result.losses] == [1, 2, 4]
    assert any(not torch.equal(a, b) for a, b in zip(before, method.parameters(), strict=True))
    assert not method.training


def test_fit_for_a_time_budget(generator):
    method = APBSN(create_net("dbsnl", preset=None, **TINY["dbsnl"]))
    result = fit(method, sampler, generator=generator, seconds=0.5)
    assert result.steps >= 1 and 0.5 <= result.seconds < 5


def test_finetune_objective(generator):
    method = AMSNet(create_net("unet", preset=None, **TINY["unet"]))
    assert fit(method, sampler, generator=generator, steps=2, objective="finetune").steps == 2
    with pytest.raises(ConfigError, match="fine-tuning"):
        fit(
            APBSN(create_net("dbsnl", preset="small")),
            sampler,
            generator=generator,
            steps=1,
            objective="finetune",
        )


def test_non_finite_losses_are_skipped_then_stop_the_run(generator):
    method = AMSNet(create_net("dncnn", preset=None, **TINY["dncnn"]))

    def nan_sampler(g):
        return torch.full((1, 3, 10, 10), float("nan"))

    with pytest.raises(ConfigError, match="lower the learning rate"):
        fit(method, nan_sampler, generator=generator, steps=3, max_bad_steps=4)


def test_budget_arguments_are_exclusive(generator):
    method = AMSNet(create_net("dncnn", preset=None, **TINY["dncnn"]))
    with pytest.raises(ConfigError, match="exactly one"):
        fit(method, sampler, generator=generator)
    with pytest.raises(ConfigError, match="exactly one"):
        fit(method, sampler, generator=generator, steps=1, seconds=1.0)


def test_cosine_factor():
    assert cosine_factor(0.0) == 1.0
    assert cosine_factor(1.0) == pytest.approx(0.01)
    assert cosine_factor(0.5) == pytest.approx(0.505)
