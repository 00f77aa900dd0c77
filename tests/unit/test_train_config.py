"""Experiment configurations: shipped files, overrides, cross-field checks, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from amsnet.config import (
    AMSNetConfig,
    APBSNConfig,
    apply_overrides,
    dump_config,
    ExperimentConfig,
    load_config,
    SupervisedConfig,
    validate,
)
from amsnet.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SHIPPED = sorted(CONFIGS.rglob("*.yaml"))
BACKBONES = ("restormer", "nafnet", "deamnet", "unet", "dncnn")


def minimal(**sections) -> dict:
    data = {
        "method": {"name": "amsnet"},
        "net": {"name": "dncnn"},
        "data": {"train": {"kind": "noisy_folder", "root": "noisy", "crop_size": 40}},
        "train": {"steps": 10},
    }
    data.update(sections)
    return data


def test_configs_are_shipped_for_every_setting():
    names = {path.relative_to(CONFIGS).as_posix() for path in SHIPPED}
    for stage in ("amsnet_b", "amsnet_p", "supervised"):
        assert {f"{stage}/{net}.yaml" for net in BACKBONES} <= names
    assert {"apbsn/sidd.yaml", "cpu/amsnet.yaml", "cpu/apbsn.yaml", "cpu/supervised.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.relative_to(CONFIGS).as_posix())
def test_every_shipped_config_validates_without_its_data(path):
    config = load_config(path)  # the data folders are absent here: not checked at load time
    assert isinstance(config, ExperimentConfig)
    if config.train.stage == "P":
        assert config.train.init is not None


@pytest.mark.parametrize("net", BACKBONES)
def test_stage_b_configs_follow_the_paper_recipe(net):
    config = load_config(CONFIGS / "amsnet_b" / f"{net}.yaml")
    assert isinstance(config.method, AMSNetConfig)
    assert (config.method.pd_factor_train, config.method.pd_factor_eval) == (5, 2)
    assert config.method.num_masks == 2 and config.data.train.crop_size == 160
    assert config.data.train.batch_size == (2 if net == "restormer" else 4)
    optimizer = config.train.optimizer
    assert (optimizer.name, optimizer.lr, optimizer.betas) == ("adamw", 1e-4, (0.9, 0.999))
    assert config.train.schedule.name == "cosine_restarts"
    assert config.data.val is not None and config.data.val.limit == 128


@pytest.mark.parametrize("net", BACKBONES)
def test_stage_p_configs_fine_tune_from_stage_b(net):
    config = load_config(CONFIGS / "amsnet_p" / f"{net}.yaml")
    stage_b = load_config(CONFIGS / "amsnet_b" / f"{net}.yaml")
    assert config.train.stage == "P" and config.data.train.crop_size == 320
    assert config.train.optimizer.lr == 1e-5
    assert config.train.init == f"runs/{stage_b.experiment.name}/best.safetensors"
    assert config.net == stage_b.net


def test_apbsn_config_is_its_own_recipe():
    config = load_config(CONFIGS / "apbsn" / "sidd.yaml")
    assert isinstance(config.method, APBSNConfig)
    train = config.data.train
    assert (train.crop_size, train.batch_size, train.flips, train.rotate) == (120, 8, True, True)
    assert config.train.optimizer.name == "adam" and config.train.schedule.name == "step"
    assert config.train.schedule.gamma == 0.1
    assert config.train.steps == int(2.5 * config.train.schedule.step_size)  # 20 of 8 epochs


@pytest.mark.parametrize("net", BACKBONES)
def test_supervised_configs_differ_from_stage_b_only_in_the_objective(net):
    config = load_config(CONFIGS / "supervised" / f"{net}.yaml")
    stage_b = load_config(CONFIGS / "amsnet_b" / f"{net}.yaml")
    assert isinstance(config.method, SupervisedConfig)
    assert config.train == stage_b.train and config.net == stage_b.net
    assert config.data.train == stage_b.data.train


def test_cpu_configs_use_small_presets_and_bundled_photos():
    for name in ("amsnet", "apbsn", "supervised"):
        config = load_config(CONFIGS / "cpu" / f"{name}.yaml")
        assert config.net.preset == "small" and config.train.device == "cpu"
        assert config.data.train.kind == "synthetic_camera"
        assert config.data.train.source == "skimage"
        assert config.data.val is not None and config.data.val.root == "skimage"


def test_overrides_are_read_as_yaml_values():
    data = apply_overrides(
        minimal(),
        [
            "train.optimizer.lr=1e-5",
            "train.optimizer.betas=[0.8, 0.9]",
            "train.grad_clip=null",
            "data.train.flips=false",
            "experiment.name=my-run",
            "train.amp=off",  # the former key; YAML reads an unquoted off as false
        ],
    )
    config = validate(ExperimentConfig, data, "test")
    assert config.train.precision == "fp32"
    assert config.train.optimizer.lr == 1e-5
    assert config.train.optimizer.betas == (0.8, 0.9)
    assert config.train.grad_clip is None and config.data.train.flips is False
    assert config.experiment.name == "my-run"


def test_overrides_do_not_change_the_input():
    data = minimal()
    apply_overrides(data, ["train.steps=99"])
    assert data["train"]["steps"] == 10


@pytest.mark.parametrize(
    ("override", "message"),
    [("train.steps", "section.key=value"), ("=3", "section.key=value"), ("a..b=1", "section")],
)
def test_malformed_overrides_are_rejected(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(minimal(), [override])


def test_an_override_cannot_go_through_a_value():
    with pytest.raises(ConfigError, match="train.steps is a value"):
        apply_overrides(minimal(), ["train.steps.x=1"])


def test_an_unknown_key_names_the_closest_and_the_accepted_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(minimal()))
    with pytest.raises(ConfigError) as error:
        load_config(path, ["train.lr=1e-3"])
    text = str(error.value)
    assert "train.lr: unknown key 'lr'" in text and "Accepted keys:" in text
    assert "optimizer" in text.split("Accepted keys:")[1] and "with overrides" in text


def test_a_typo_in_a_nested_section_suggests_the_right_key():
    data = minimal()
    data["data"]["train"]["crop_sise"] = 40
    with pytest.raises(ConfigError, match="did you mean 'crop_size'"):
        validate(ExperimentConfig, data, "x.yaml")


def test_crop_size_must_be_a_multiple_of_the_training_pd_factor():
    data = minimal()
    data["data"]["train"]["crop_size"] = 162
    with pytest.raises(
        ConfigError, match=r"crop_size 162 is not a multiple of .*5; use 160 or 165"
    ):
        validate(ExperimentConfig, data, "x.yaml")


def test_stage_p_checks_the_fine_tuning_pd_factor():
    data = minimal(
        method={"name": "amsnet", "pd_factor_finetune": 4},
        train={"steps": 5, "stage": "P", "init": "b.safetensors"},
    )
    data["data"]["train"]["crop_size"] = 45  # a multiple of pd_factor_train 5, not of 4
    with pytest.raises(ConfigError, match="pd_factor_finetune 4; use 44 or 48"):
        validate(ExperimentConfig, data, "x.yaml")
    data["data"]["train"]["crop_size"] = 48
    validate(ExperimentConfig, data, "x.yaml")  # 48 is a multiple of 4, not of 5


def test_stage_p_needs_amsnet():
    data = minimal(method={"name": "apbsn"}, train={"steps": 5, "stage": "P"})
    with pytest.raises(ConfigError, match="stage P .* only for method amsnet"):
        validate(ExperimentConfig, data, "x.yaml")


def test_supervised_needs_paired_data():
    with pytest.raises(ConfigError, match="noisy_folder has no clean images"):
        validate(ExperimentConfig, minimal(method={"name": "supervised"}), "x.yaml")
    data = minimal(method={"name": "supervised"})
    data["data"]["train"] = {"kind": "synthetic_camera", "source": "skimage", "crop_size": 33}
    assert validate(ExperimentConfig, data, "x.yaml").data.train.crop_size == 33  # no PD


def test_at_least_two_masks():
    with pytest.raises(ConfigError, match="num_masks"):
        validate(ExperimentConfig, minimal(method={"name": "amsnet", "num_masks": 1}), "x")


def test_a_key_of_another_data_kind_is_an_error():
    data = minimal()
    data["data"]["train"]["source"] = "skimage"
    with pytest.raises(ConfigError, match="source is only read by kind synthetic_camera"):
        validate(ExperimentConfig, data, "x.yaml")


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"kind": "sidd_medium"}, "needs data.train.root"),
        ({"kind": "synthetic_camera"}, "needs data.train.source"),
        ({"kind": "paired_folder", "root": "x"}, "clean_root"),
        ({"kind": "paired_folder", "root": "x", "rule": "regex"}, "noisy_pattern"),
    ],
)
def test_each_data_kind_asks_for_its_keys(train, message):
    data = minimal()
    data["data"]["train"] = train
    with pytest.raises(ConfigError, match=message):
        validate(ExperimentConfig, data, "x.yaml")


def test_schedules_ask_for_their_keys():
    for schedule, key in (({"name": "cosine_restarts"}, "period"), ({"name": "step"}, "step_size")):
        with pytest.raises(ConfigError, match=key):
            validate(ExperimentConfig, minimal(train={"steps": 5, "schedule": schedule}), "x")


def test_validation_sets_ask_for_their_keys():
    for val, key in (
        ({"dataset": "awgn", "root": "x"}, "sigma"),
        ({"dataset": "folders", "root": "x"}, "clean_root"),
    ):
        data = minimal()
        data["data"]["val"] = val
        with pytest.raises(ConfigError, match=key):
            validate(ExperimentConfig, data, "x.yaml")


def test_dump_then_load_gives_the_same_configuration(tmp_path):
    config = load_config(CONFIGS / "amsnet_p" / "unet.yaml", ["train.ema_decay=0.999"])
    path = dump_config(config, tmp_path / "resolved.yaml")
    assert load_config(path) == config
    assert "smoothness_weight" in path.read_text()  # defaults are written out


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(tmp_path / "list.yaml")
