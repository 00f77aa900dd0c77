"""``amsnet train`` and ``amsnet finetune`` from the command line."""

from __future__ import annotations

import yaml

from amsnet.checkpoint import load_state, read_header
from amsnet.cli import main
from tests.integration.test_train_trainer import image_folders, tiny_config


def write_config(tmp_path, *overrides):
    root = image_folders(tmp_path)
    path = tmp_path / "config.yaml"
    config = tiny_config(root, "train.steps=3", *overrides)
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return path


def test_train_writes_a_run_and_says_where(tmp_path, capsys):
    path = write_config(tmp_path)
    run = tmp_path / "run"
    code = main(["train", str(path), "--out", str(run), "--quiet", "--set", "train.steps=2"])
    assert code == 0
    out = capsys.readouterr().out
    assert f"last weights: {run / 'last.safetensors'}" in out
    assert "best validation PSNR" in out
    assert load_state(run / "state.pt")["step"] == 2


def test_finetune_sets_stage_p_and_the_initial_weights(tmp_path, capsys, caplog):
    path = write_config(tmp_path, "data.val=null")
    assert main(["train", str(path), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    weights = tmp_path / "b" / "last.safetensors"
    code = main(["finetune", str(path), "--init", str(weights), "--out", str(tmp_path / "p")])
    assert code == 0
    state = load_state(tmp_path / "p" / "state.pt")
    assert state["config"]["train"]["stage"] == "P"
    assert state["config"]["train"]["init"] == str(weights)
    assert read_header(tmp_path / "p" / "last.safetensors")["metrics"]["stage"] == "P"
    assert "stage-B configuration" in caplog.text


def test_errors_are_one_line_without_traceback(tmp_path, capsys):
    path = write_config(tmp_path)
    assert main(["train", str(path), "--set", "train.setps=3"]) == 1
    error = capsys.readouterr().err
    assert "unknown key 'setps'; did you mean 'steps'?" in error and "Traceback" not in error
    missing = ["train", str(path), "--out", str(tmp_path / "r"), "--set", "data.train.root=nowhere"]
    assert main(missing) == 1
    assert "data.train.root (nowhere)" in capsys.readouterr().err
