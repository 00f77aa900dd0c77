"""Two processes under torchrun (Gloo on the CPU) train one model and end with identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from amsnet.checkpoint import load_state
from tests.integration.test_train_trainer import image_folders, tiny_config


def test_two_processes_hold_identical_weights(tmp_path):
    root = image_folders(tmp_path)
    # DnCNN has batch norm: its statistics are per process until the trainer syncs them.
    config = tiny_config(root, "train.steps=4", "train.val_every=2", "train.checkpoint_every=2")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "amsnet",
        "train",
        str(path),
        "--out",
        str(run),
        "--quiet",
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((run / "result.json").read_text())
    assert result["step"] == 4 and len(result["fingerprints"]) == 2
    assert result["fingerprints"][0] == result["fingerprints"][1]
    state = load_state(run / "state.pt")
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    assert state["data"]["crops_per_step"] == 4  # two processes x batch 2
    assert not torch_equal(state["rng"][0]["torch"], state["rng"][1]["torch"])
    assert len((run / "validation.csv").read_text().splitlines()) == 3  # rank 0 only: 2 rows


def torch_equal(first, second) -> bool:
    import torch

    return torch.equal(first, second)
