"""Weights files: round trip, header, atomic writes and every documented failure."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import amsnet
from amsnet.checkpoint import load_pretrained, read_header, save_pretrained
from amsnet.errors import CheckpointError, ConfigError
from amsnet.methods import AMSNet, APBSN
from amsnet.nets import create_net


@pytest.fixture
def method() -> AMSNet:
    return AMSNet(create_net("unet", preset="small"), num_masks=3, partition="balanced")


def test_save_then_load_gives_identical_denoising(tmp_path, method):
    path = save_pretrained(method, tmp_path / "model.safetensors", metrics={"psnr": 30.5})
    loaded = load_pretrained(path)
    assert isinstance(loaded, AMSNet) and not loaded.training
    assert loaded.method_config() == method.method_config()
    noisy = torch.rand(1, 3, 45, 37)
    for refine in (False, True):
        assert torch.equal(
            loaded.denoise(noisy, refine=refine), method.denoise(noisy, refine=refine)
        )
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_header_holds_config_version_and_metrics(tmp_path, method):
    path = save_pretrained(
        method, tmp_path / "m.safetensors", metrics={"psnr": 30.5}, source="test"
    )
    header = read_header(path)
    assert header["version"] == amsnet.__version__ and header["format"] == "1"
    assert header["config"]["method"]["num_masks"] == 3
    assert header["config"]["net"] == method.backbone.net_config
    assert header["metrics"] == {"psnr": 30.5} and header["source"] == "test"


def test_apbsn_round_trip(tmp_path):
    method = APBSN(create_net("dbsnl", preset="small"), pd_pad=1)
    loaded = load_pretrained(save_pretrained(method, tmp_path / "a.safetensors"))
    noisy = torch.rand(1, 3, 20, 20)
    assert isinstance(loaded, APBSN) and torch.equal(loaded.denoise(noisy), method.denoise(noisy))


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pretrained(tmp_path / "nope.safetensors")


def test_a_pickle_checkpoint_is_pointed_to_the_converter(tmp_path):
    path = tmp_path / "official.ckpt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="amsnet convert"):
        load_pretrained(path)


def test_a_truncated_file_is_reported(tmp_path, method):
    path = save_pretrained(method, tmp_path / "m.safetensors")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="m.safetensors"):
        load_pretrained(path)


def test_a_safetensors_file_without_config_is_explained(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="no amsnet configuration"):
        load_pretrained(path)


def test_weights_that_do_not_fit_name_the_keys(tmp_path, method):
    path = tmp_path / "edited.safetensors"
    config = {"method": method.method_config(), "net": method.backbone.net_config}
    tensors = {k: v.contiguous() for k, v in method.state_dict().items()}
    tensors.pop(next(iter(tensors)))
    metadata = {"amsnet.format": "1", "amsnet.config": json.dumps(config)}
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(CheckpointError, match="1 missing"):
        load_pretrained(path)


def test_an_invalid_stored_config_is_reported(tmp_path, method):
    path = tmp_path / "bad.safetensors"
    config = {"method": {"name": "amsnet", "num_masks": 1}, "net": {"name": "unet"}}
    save_file(
        {"w": torch.zeros(1)},
        str(path),
        metadata={"amsnet.format": "1", "amsnet.config": json.dumps(config)},
    )
    with pytest.raises(CheckpointError, match="num_masks"):
        load_pretrained(path)


def test_a_newer_format_asks_for_an_upgrade(tmp_path):
    path = tmp_path / "future.safetensors"
    save_file(
        {"w": torch.zeros(1)}, str(path), metadata={"amsnet.format": "9", "amsnet.config": "{}"}
    )
    with pytest.raises(CheckpointError, match="upgrade"):
        load_pretrained(path)


def test_a_backbone_not_from_the_registry_cannot_be_saved(tmp_path):
    with pytest.raises(ConfigError, match="create_net"):
        save_pretrained(AMSNet(torch.nn.Conv2d(3, 3, 3, padding=1)), tmp_path / "x.safetensors")


def test_written_files_get_the_usual_permissions(tmp_path, method):
    import os
    import stat

    path = save_pretrained(method, tmp_path / "m.safetensors")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
