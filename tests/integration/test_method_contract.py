"""A new method is one class that follows ``amsnet.methods.base.Method``: nothing else changes.

``GridMasking`` below is a Noise2Self-style method written only against the contract (a
random sparse set of pixels hidden, the loss scored on them, one plain pass at inference).
The quick fit and the trainer train it without knowing its class, and refuse what it does
not declare.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from amsnet.checkpoint import read_header
from amsnet.errors import ConfigError
from amsnet.inference import denoise_image, plan_tiles, tile_alignment
from amsnet.losses import masked_l1
from amsnet.methods.base import Batch, eval_mode, LossOutput, Method, require_stage
from amsnet.nets import create_net
from amsnet.ops.masks import hide
from amsnet.training import Trainer
from amsnet.training.fit import fit, fit_images
from tests.integration.test_train_trainer import image_folders, read_csv, tiny_config
from tests.nets_tiny import TINY


class GridMasking(nn.Module):
    """Hide each pixel with probability ``ratio``, predict it from its neighbours (L1 on the
    hidden pixels only); denoise in one pass without masks."""

    needs_target: ClassVar[bool] = False
    stages: ClassVar[tuple[str, ...]] = ("B",)
    backbone_dtype: torch.dtype | None = None

    def __init__(self, backbone: nn.Module, ratio: float = 0.1) -> None:
        super().__init__()
        self.backbone = backbone
        self.ratio = ratio
        self.seen: list[Batch] = []

    def objective(
        self, batch: Batch, stage: str = "B", *, generator: torch.Generator
    ) -> LossOutput:
        require_stage(self, stage)
        self.seen.append(batch)
        noisy = batch.noisy
        shape = (noisy.shape[0], 1, *noisy.shape[-2:])
        draw = torch.rand(shape, generator=generator, device=noisy.device)
        hidden = draw < self.ratio
        prediction = self.backbone(hide(noisy, ~hidden, "neighbour_mean"))
        loss = masked_l1(prediction, noisy, hidden)
        return LossOutput(loss=loss, terms={"grid_l1": loss.detach()})

    def denoise(self, noisy: torch.Tensor, **_: Any) -> torch.Tensor:
        with torch.no_grad(), eval_mode(self.backbone):
            return self.backbone(noisy)

    def method_config(self) -> dict[str, Any]:
        return {"name": "grid_masking", "ratio": self.ratio}


def grid_masking() -> GridMasking:
    torch.manual_seed(0)
    return GridMasking(create_net("dncnn", preset=None, **TINY["dncnn"]))


def weights(method: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in method.parameters()]


def test_the_example_follows_the_protocol():
    assert isinstance(grid_masking(), Method)


def test_fit_trains_a_method_it_does_not_know(generator):
    method = grid_masking()
    before = weights(method)
    images = [torch.rand(3, 30, 34, generator=torch.Generator().manual_seed(1))]
    result = fit_images(method, images, crop=16, batch_size=2, steps=4)
    assert result.steps == 4 and result.skipped == 0
    assert any(not torch.equal(a, b) for a, b in zip(before, method.parameters(), strict=True))
    assert len(method.seen) == 4 and all(batch.target is None for batch in method.seen)
    assert method.denoise(images[0][None]).shape == (1, 3, 30, 34)
    # Tiled inference needs no declaration either: the tiles align to the backbone alone.
    assert tile_alignment(method) == 1
    plan = plan_tiles(method, 30, 34, tile=16, overlap=4)
    assert denoise_image(method, images[0], plan=plan).shape == (3, 30, 34)


def test_fit_refuses_a_stage_or_a_target_the_method_does_not_declare(generator):
    method = grid_masking()
    with pytest.raises(ConfigError, match="GridMasking has no fine-tuning objective"):
        fit(
            method,
            lambda g: torch.rand(1, 3, 8, 8),
            generator=generator,
            steps=1,
            objective="finetune",
        )
    pairs = (torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ConfigError, match="self-supervised and must not see targets"):
        fit(method, lambda g: pairs, generator=generator, steps=1)


def test_the_trainer_trains_a_method_it_does_not_know(tmp_path):
    root = image_folders(tmp_path)
    method = grid_masking()
    before = weights(method)
    config = tiny_config(root)
    result = Trainer(config, quiet=True, method=method).fit()
    assert result.step == 6 and result.skipped_steps == 0 and result.best_psnr is not None
    assert any(
        not torch.equal(a, b.cpu()) for a, b in zip(before, method.parameters(), strict=True)
    )
    assert "grid_l1" in read_csv(result.run_dir / "log.csv")[0]
    assert read_header(result.last_path)["config"]["method"] == method.method_config()
    # Self-supervised: the trainer never handed it a target, even from paired data.
    assert len(method.seen) == 6 and all(batch.target is None for batch in method.seen)


def test_the_trainer_refuses_a_stage_the_method_does_not_declare(tmp_path):
    config = tiny_config(image_folders(tmp_path), "train.stage=P", "train.init=b.safetensors")
    with pytest.raises(ConfigError, match="GridMasking has no fine-tuning objective"):
        Trainer(config, quiet=True, method=grid_masking())


class OnePassGrid(GridMasking):
    """The example method, declaring that it has no masks to refine and cannot be adapted."""

    refinable: ClassVar[bool] = False
    adaptation: ClassVar[str | None] = None
    description: ClassVar[str] = "a one-pass grid model"


def test_the_api_reads_refinement_and_adaptation_from_the_method():
    import amsnet.api

    plain = grid_masking()
    amsnet.api.check_refinable(plain)  # nothing declared: a self-supervised method's defaults
    declared = OnePassGrid(create_net("dncnn", preset=None, **TINY["dncnn"]))
    with pytest.raises(ConfigError, match="a one-pass grid model has none"):
        amsnet.api.check_refinable(declared)
    with pytest.raises(ConfigError, match="a one-pass grid model has no self-supervised"):
        amsnet.api.adapt(declared, torch.rand(3, 32, 32), steps=1)
