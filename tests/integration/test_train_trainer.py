"""The trainer end to end on tiny networks and tiny image folders (a few steps each)."""

from __future__ import annotations

import csv
import json
import logging
import sys

import numpy as np
import pytest
import torch

from amsnet.checkpoint import load_pretrained, load_state, read_header, read_tensors
from amsnet.config import apply_overrides, ExperimentConfig, load_config, validate
from amsnet.errors import CheckpointError, ConfigError
from amsnet.methods import AMSNet, Supervised
from amsnet.training import Trainer
from amsnet.training.logbook import progress_bar_wanted, truncate_csv
from tests.nets_tiny import TINY
from tests.unit.imagefiles import noise, save


def image_folders(root):
    """A folder of noisy training images and a CC-style folder of validation pairs."""
    generator = np.random.default_rng(3)
    for index, (height, width) in enumerate([(40, 52), (36, 30), (48, 44)]):
        save(root / "train" / f"image{index}.png", noise(height, width))
    for index in range(3):
        clean = generator.integers(60, 200, (24, 28, 3), dtype=np.uint8)
        shift = generator.integers(-12, 13, clean.shape)
        noisy = np.clip(clean.astype(int) + shift, 0, 255).astype(np.uint8)
        save(root / "val" / f"scene{index}_real.png", noisy)
        save(root / "val" / f"scene{index}_mean.png", clean)
    return root


def tiny_config(root, *overrides: str) -> ExperimentConfig:
    """AMSNet (PD 2) around a tiny DnCNN, 6 steps, validation every 3: about a second."""
    data = {
        "experiment": {"name": "tiny", "seed": 3, "output_dir": str(root / "runs")},
        "method": {"name": "amsnet", "pd_factor_train": 2, "pd_factor_eval": 1},
        "net": {"name": "dncnn", "preset": None, **TINY["dncnn"]},
        "data": {
            "train": {
                "kind": "noisy_folder",
                "root": str(root / "train"),
                "crop_size": 24,
                "batch_size": 2,
                "workers": 0,
            },
            "val": {"dataset": "cc", "root": str(root / "val"), "samples": 2},
        },
        "train": {
            "steps": 6,
            "log_every": 2,
            "val_every": 3,
            "checkpoint_every": 3,
            "optimizer": {"lr": 1e-3},
            "device": "cpu",
        },
    }
    return validate(ExperimentConfig, apply_overrides(data, overrides), "test")


@pytest.fixture
def root(tmp_path):
    return image_folders(tmp_path)


def read_csv(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_run_folder_holds_everything_needed(root):
    result = Trainer(tiny_config(root), quiet=True).fit()
    run = root / "runs" / "tiny"
    assert result.step == 6 and not result.interrupted and result.run_dir == run
    assert load_config(run / "config.yaml") == tiny_config(root)
    environment = json.loads((run / "environment.json").read_text())[0]
    assert {"amsnet", "python", "torch", "device", "git_commit", "command"} <= set(environment)
    rows = read_csv(run / "log.csv")
    assert [row["step"] for row in rows] == ["2", "4", "6"]
    assert {"loss", "mask_l1", "lr", "steps_per_second", "crops_per_second"} <= set(rows[0])
    validations = read_csv(run / "validation.csv")
    assert [row["step"] for row in validations] == ["3", "6"]
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step_00000003.png",
        "step_00000006.png",
    ]
    assert json.loads((run / "result.json").read_text())["step"] == 6
    assert (run / "train.log").read_text().count("validation at step") == 2


def test_weights_files_carry_configuration_step_and_metrics(root):
    result = Trainer(tiny_config(root), quiet=True).fit()
    header = read_header(result.last_path)
    assert header["config"]["method"]["pd_factor_train"] == 2
    assert header["config"]["net"]["name"] == "dncnn"
    assert header["metrics"]["step"] == 6 and header["metrics"]["stage"] == "B"
    best = read_header(result.best_path)["metrics"]
    assert best["psnr"] == pytest.approx(result.best_psnr) and best["step"] == result.best_step
    assert isinstance(load_pretrained(result.best_path), AMSNet)


def test_the_resume_state_holds_what_resuming_needs(root):
    Trainer(tiny_config(root), quiet=True).fit()
    state = load_state(root / "runs" / "tiny" / "state.pt")
    assert state["step"] == 6 and state["world_size"] == 1
    assert {"model", "optimizer", "rng", "best", "counters", "data", "config"} <= set(state)
    assert state["rng"][0]["torch"].dtype == torch.uint8
    assert state["data"] == {"next_step": 6, "crops_per_step": 2}


def test_the_best_weights_are_those_of_the_best_validation(root):
    result = Trainer(tiny_config(root), quiet=True).fit()
    rows = read_csv(result.run_dir / "validation.csv")
    best = max(rows, key=lambda row: float(row["psnr"]))
    assert int(best["step"]) == result.best_step and best["best"] == "1"


def test_a_fresh_start_does_not_overwrite_a_run(root):
    Trainer(tiny_config(root, "train.steps=3"), quiet=True).fit()
    with pytest.raises(ConfigError, match="already holds a training run.*--resume"):
        Trainer(tiny_config(root, "train.steps=3"), quiet=True).fit()


def test_resume_without_a_state_says_so(root):
    with pytest.raises(CheckpointError, match="without --resume"):
        Trainer(tiny_config(root), quiet=True, resume=True).fit()


def test_resuming_a_finished_run_changes_nothing(root):
    Trainer(tiny_config(root, "train.steps=3"), quiet=True).fit()
    result = Trainer(tiny_config(root, "train.steps=3"), quiet=True, resume=True).fit()
    assert result.step == 3 and not result.interrupted


def test_resuming_with_other_settings_warns(root, caplog):
    Trainer(tiny_config(root), quiet=True).fit(until=3)
    with caplog.at_level(logging.WARNING, logger="amsnet"):
        Trainer(tiny_config(root, "train.optimizer.lr=2e-3"), quiet=True, resume=True).fit()
    assert "changed settings (train.optimizer.lr)" in caplog.text


class NaNCrops(torch.utils.data.Dataset):
    """Crops that are NaN for the items of the given steps (batch size 2)."""

    def __init__(self, bad_steps):
        self.bad_steps = set(bad_steps)

    def __len__(self):
        return 10_000

    def __getitem__(self, index):
        crop = torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(index))
        return torch.full_like(crop, float("nan")) if index // 2 in self.bad_steps else crop


def test_non_finite_losses_are_skipped_and_counted(root):
    config = tiny_config(root, "train.log_every=1", "data.val=null", "train.ema_decay=0.9")
    trainer = Trainer(config, quiet=True, train_data=NaNCrops({2, 3}))
    trainer.fit(until=2)
    before = {k: v.clone() for k, v in trainer.method.state_dict().items()}
    average = {k: v.clone() for k, v in trainer.average.module.state_dict().items()}
    trainer = Trainer(config, quiet=True, train_data=NaNCrops({2, 3}), resume=True)
    result = trainer.fit(until=4)
    after = trainer.method.state_dict()
    assert result.skipped_steps == 2
    assert all(torch.equal(before[k], after[k]) for k in before)  # steps 2 and 3 changed nothing
    assert all(torch.equal(average[k], v) for k, v in trainer.average.module.state_dict().items())
    rows = read_csv(root / "runs" / "tiny" / "log.csv")
    assert [row["loss"] for row in rows[2:4]] == ["nan", "nan"]
    assert rows[3]["skipped_steps"] == "2"


def test_too_many_non_finite_losses_stop_the_run_after_saving(root):
    config = tiny_config(root, "train.log_every=2", "train.max_bad_steps=3", "data.val=null")
    with pytest.raises(ConfigError, match=r"not finite for 3 steps in a row.*Lower train\.optim"):
        Trainer(config, quiet=True, train_data=NaNCrops({1, 2, 3, 4, 5})).fit()
    assert load_state(root / "runs" / "tiny" / "state.pt")["step"] == 4


def test_self_supervised_methods_never_see_clean_images(root, monkeypatch):
    seen = []
    original = AMSNet.training_loss

    def spy(self, noisy, **options):
        seen.append(sorted(options))
        return original(self, noisy, **options)

    monkeypatch.setattr(AMSNet, "training_loss", spy)
    pairs = [{"noisy": torch.rand(3, 24, 24), "clean": torch.zeros(3, 24, 24)}] * 20
    Trainer(tiny_config(root, "data.val=null"), quiet=True, train_data=pairs).fit()
    assert seen == [["generator"]] * 6


def test_the_supervised_method_trains_on_pairs(root):
    config = tiny_config(
        root,
        "method={name: supervised}",
        "data.train={kind: paired_folder, rule: cc, root: "
        + str(root / "val")
        + ", crop_size: 20}",
    )
    result = Trainer(config, quiet=True).fit()
    assert isinstance(load_pretrained(result.last_path), Supervised)
    assert "l1" in read_csv(result.run_dir / "log.csv")[0]


def test_stage_p_starts_from_the_init_weights_and_uses_l_t(root):
    stage_b = Trainer(tiny_config(root, "data.val=null"), quiet=True).fit()
    init = str(stage_b.last_path)
    with pytest.raises(ConfigError, match="set train.init"):
        Trainer(tiny_config(root, "train.stage=P", "experiment.name=p"), quiet=True)
    config = tiny_config(root, "train.stage=P", f"train.init={init}", "experiment.name=p")
    trainer = Trainer(config, quiet=True)
    trainer.fit(until=0)
    start = read_tensors(init)
    assert all(torch.equal(start[k], v) for k, v in trainer.method.state_dict().items())
    result = Trainer(config, quiet=True, resume=True).fit()
    row = read_csv(result.run_dir / "log.csv")[0]
    assert {"fidelity_l1", "smoothness"} <= set(row) and "mask_l1" not in row


def test_init_weights_of_another_backbone_are_refused(root):
    other = Trainer(tiny_config(root, "data.val=null", "net.width=4"), quiet=True).fit()
    config = tiny_config(root, f"train.init={other.last_path}", "experiment.name=x")
    with pytest.raises(ConfigError, match="differs from the configured dncnn in width"):
        Trainer(config, quiet=True).fit()


def test_saved_weights_are_the_weight_average(root):
    result = Trainer(tiny_config(root, "train.ema_decay=0.5"), quiet=True).fit()
    state = load_state(result.run_dir / "state.pt")
    saved = read_tensors(result.last_path)
    assert all(torch.equal(saved[k], v) for k, v in state["ema"]["weights"].items())
    assert any(not torch.equal(saved[k], v) for k, v in state["model"].items())


def test_progress_bar_rules(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert not progress_bar_wanted(quiet=False)
    monkeypatch.delenv("CI")
    assert not progress_bar_wanted(quiet=True)


def test_tensorboard_is_optional(root, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with caplog.at_level(logging.INFO, logger="amsnet"):
        Trainer(tiny_config(root, "train.steps=2", "data.val=null"), quiet=True).fit()
    assert caplog.text.count("TensorBoard logging off") == 1


def test_resumed_logs_drop_the_rows_after_the_checkpoint(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("step,loss\n2,0.5\n4,0.4\n6,0.3\n")
    truncate_csv(path, 4)
    assert path.read_text().splitlines() == ["step,loss", "2,0.5", "4,0.4"]
