"""The official-checkpoint converter on state dicts carrying the official key names and shapes.

The key lists in ``tests/data/official_keys`` were written from the official sources (AMSNet
``codes/arches``, AP-BSN ``src/model/DBSNl.py``, KAIR, NAFNet, Restormer, DeamNet).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from amsnet.checkpoint import load_pretrained, save_pretrained
from amsnet.cli import main
from amsnet.compat.official import convert_official, detect_backbone, read_official, rename_official
from amsnet.errors import CheckpointError
from amsnet.methods import AMSNet, APBSN

KEYS = Path(__file__).resolve().parents[1] / "data" / "official_keys"
NETS = sorted(p.stem for p in KEYS.glob("*.json"))


def official_state(name: str) -> dict[str, torch.Tensor]:
    """Tensors of the official shapes, each filled with its own index so mix-ups show."""
    shapes = json.loads((KEYS / f"{name}.json").read_text())
    state = {}
    for index, (key, shape) in enumerate(shapes.items()):
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(index, dtype=torch.int64)
        else:
            state[key] = torch.full(shape, float(index) / 1000)
    return state


def lightning(state: dict[str, torch.Tensor]) -> dict:
    return {
        "epoch": 3,
        "global_step": 1000,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": {f"net.dn.branches.0.{k}": v for k, v in state.items()},
        "hyper_parameters": {"net": {"class_path": "codes.model.MultiMaskPdDn"}},
    }


def apbsn(state: dict[str, torch.Tensor]) -> dict:
    return {"epoch": 20, "model_weight": {"denoiser": {f"bsn.{k}": v for k, v in state.items()}}}


def test_every_registered_net_has_an_official_key_list():
    from amsnet.nets import list_nets

    assert list_nets() == NETS


@pytest.mark.parametrize("name", NETS)
def test_official_tensors_land_on_the_right_parameters(name):
    state = official_state(name)
    wrapped = apbsn(state) if name == "dbsnl" else lightning(state)
    model = convert_official(wrapped)
    assert model.backbone.net_config["name"] == name
    assert isinstance(model, APBSN if name == "dbsnl" else AMSNet)
    ours = model.backbone.state_dict()
    renamed = rename_official(state, name)
    assert set(renamed) == set(ours)
    for key, value in renamed.items():
        assert torch.equal(ours[key], value), key


@pytest.mark.parametrize("name", NETS)
def test_the_backbone_is_recognised_from_keys_and_shapes(name):
    assert detect_backbone(official_state(name)) == name


def test_convert_through_files_and_the_cli(tmp_path):
    state = official_state("dncnn")
    ckpt = tmp_path / "dncnn-sidd.ckpt"
    torch.save(lightning(state), ckpt)
    out = tmp_path / "dncnn.safetensors"
    assert main(["convert", str(ckpt), "-o", str(out)]) == 0
    model = load_pretrained(out)
    assert torch.equal(model.backbone.state_dict()["model.0.weight"], state["model.0.weight"])
    assert main(["convert", str(ckpt), "-o", str(out)]) == 1  # exists, no --force
    assert main(["convert", str(ckpt), "-o", str(out), "--force"]) == 0
    assert main(["convert", str(ckpt), "-o", str(ckpt)]) == 1  # never overwrite the input


def test_apbsn_pth_through_a_file(tmp_path):
    path = tmp_path / "APBSN_SIDD.pth"
    torch.save(apbsn(official_state("dbsnl")), path)
    model = convert_official(path)
    assert isinstance(model, APBSN) and model.settings.value_scale == 255.0
    save_pretrained(model, tmp_path / "apbsn.safetensors")


def test_a_bare_state_dict_and_an_explicit_backbone():
    weights = read_official(official_state("unet"))
    assert weights.kind == "backbone"
    assert (
        convert_official(official_state("unet"), backbone="unet").backbone.net_config["name"]
        == "unet"
    )


def test_other_branches_are_ignored_with_a_warning(caplog):
    state = official_state("dncnn")
    wrapped = lightning(state)
    wrapped["state_dict"].update({f"net.dn.branches.1.{k}": v + 1 for k, v in state.items()})
    model = convert_official(wrapped)
    assert torch.equal(model.backbone.state_dict()["model.0.weight"], state["model.0.weight"])
    assert "branch 0" in caplog.text


def test_unknown_layouts_and_bad_files_are_explained(tmp_path):
    state = official_state("dncnn")
    state.pop("model.0.weight")
    with pytest.raises(CheckpointError, match="closest: dncnn"):
        convert_official(lightning(state))
    with pytest.raises(CheckpointError, match="do not fit"):
        convert_official(lightning(official_state("dncnn")), backbone="unet")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="garbage.ckpt"):
        convert_official(garbage)
    with pytest.raises(CheckpointError, match="does not exist"):
        convert_official(tmp_path / "missing.ckpt")
    with pytest.raises(CheckpointError, match="no tensors"):
        convert_official({"epoch": 1})


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "callback": Path("x")}, path)  # a non-tensor object
    with pytest.raises(CheckpointError, match="weights_only"):
        convert_official(path)
