"""One optimisation step (amsnet.training.step), shared by the trainer and the quick fit."""

from __future__ import annotations

import pytest
import torch

from amsnet.errors import ConfigError
from amsnet.methods import AMSNet, Batch, Supervised
from amsnet.nets import create_net
from amsnet.training.ema import WeightAverage
from amsnet.training.fit import fit
from amsnet.training.step import grad_scaler, TrainStep
from tests.nets_tiny import TINY


def tiny_amsnet() -> AMSNet:
    torch.manual_seed(0)
    return AMSNet(create_net("dncnn", preset=None, **TINY["dncnn"]), pd_factor_train=2)


def state(method: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in method.state_dict().items()}


@pytest.mark.parametrize("fused", [False, True])
def test_a_non_finite_batch_changes_nothing(fused, generator):
    method = tiny_amsnet()
    method.train()
    optimizer = torch.optim.Adam(method.parameters(), lr=1e-2, fused=fused)
    average = WeightAverage(method, 0.5)
    step = TrainStep(method, optimizer, "B", grad_clip=1.0, average=average)
    good = Batch(torch.rand(2, 3, 16, 16, generator=generator))
    assert not bool(step(good, generator=generator, lr=1e-2).skipped)
    weights, averaged = state(method), state(average.module)
    bad = Batch(torch.full((2, 3, 16, 16), float("nan")))
    outcome = step(bad, generator=generator, lr=1e-2)
    assert bool(outcome.bad_loss) and bool(outcome.skipped)
    # Weights, batch-norm statistics and the weight average are those of the good step.
    assert all(torch.equal(weights[k], v) for k, v in method.state_dict().items())
    assert all(torch.equal(averaged[k], v) for k, v in average.module.state_dict().items())
    outcome = step(good, generator=generator, lr=1e-2)
    assert not bool(outcome.skipped) and torch.isfinite(outcome.loss)
    assert "mask_l1" in outcome.terms
    assert any(not torch.equal(weights[k], v) for k, v in method.state_dict().items())


def test_with_a_loss_scaler_a_non_finite_step_lowers_the_scale_only(generator):
    method = tiny_amsnet()
    optimizer = torch.optim.Adam(method.parameters(), lr=1e-2, fused=True)
    scaler = grad_scaler(torch.device("cpu"))
    step = TrainStep(method, optimizer, "B", scaler=scaler)
    weights, scale = state(method), scaler.get_scale()
    outcome = step(Batch(torch.full((1, 3, 8, 8), float("nan"))), generator=generator, lr=1e-2)
    assert bool(outcome.skipped) and scaler.get_scale() < scale
    assert all(torch.equal(weights[k], v) for k, v in method.state_dict().items())
    outcome = step(Batch(torch.rand(1, 3, 8, 8, generator=generator)), generator=generator, lr=1e-2)
    assert not bool(outcome.skipped)
    assert any(not torch.equal(weights[k], v) for k, v in method.state_dict().items())


def test_the_step_sets_the_learning_rate(generator):
    method = tiny_amsnet()
    optimizer = torch.optim.AdamW(method.parameters(), lr=1.0)
    TrainStep(method, optimizer, "B")(
        Batch(torch.rand(1, 3, 8, 8, generator=generator)), generator=generator, lr=0.25
    )
    assert [group["lr"] for group in optimizer.param_groups] == [0.25]


def test_a_stage_selects_the_objective(generator):
    method = tiny_amsnet()
    batch = Batch(torch.rand(1, 3, 8, 8, generator=generator))
    assert set(method.objective(batch, "B", generator=generator).terms) == {"mask_l1"}
    assert {"fidelity_l1", "smoothness"} <= set(
        method.objective(batch, "P", generator=generator).terms
    )
    supervised = Supervised(create_net("dncnn", preset=None, **TINY["dncnn"]))
    with pytest.raises(ConfigError, match="Supervised has no fine-tuning objective"):
        supervised.objective(Batch(batch.noisy, batch.noisy), "P", generator=generator)
    with pytest.raises(ConfigError, match="needs the clean targets"):
        supervised.objective(batch, "B", generator=generator)


def test_fit_passes_the_target_to_a_method_that_needs_it(generator):
    torch.manual_seed(0)
    method = Supervised(create_net("dncnn", preset=None, **TINY["dncnn"]))
    noisy = torch.rand(2, 3, 12, 12, generator=generator)
    result = fit(method, lambda g: (noisy, noisy.clamp(0.3, 0.7)), generator=generator, steps=3)
    assert result.steps == 3 and result.skipped == 0
    with pytest.raises(ConfigError, match="needs the clean targets"):
        fit(method, lambda g: noisy, generator=generator, steps=1)
