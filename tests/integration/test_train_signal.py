"""SIGTERM during ``amsnet train`` saves a checkpoint, and ``--resume`` continues from it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from amsnet.checkpoint import load_state, read_header
from tests.integration.test_train_trainer import image_folders, tiny_config


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_saves_a_checkpoint_then_resume_finishes(tmp_path):
    root = image_folders(tmp_path)
    config = tiny_config(root, "train.steps=100000", "train.log_every=1", "data.val=null")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    run = tmp_path / "run"
    command = [sys.executable, "-m", "amsnet", "train", str(path), "--out", str(run), "--quiet"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=environment)
    try:
        deadline = time.monotonic() + 60
        while not (run / "log.csv").exists() and process.poll() is None:
            assert time.monotonic() < deadline, "training did not start within 60 s"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, errors
    assert "SIGTERM received" in errors and "--resume" in errors
    step = load_state(run / "state.pt")["step"]
    assert 1 <= step < 100000
    assert read_header(run / "last.safetensors")["metrics"]["step"] == step
    assert json.loads((run / "result.json").read_text())["interrupted"] is True

    finish = [*command, "--resume", "--set", f"train.steps={step + 2}"]
    done = subprocess.run(finish, capture_output=True, text=True, env=environment, timeout=120)
    assert done.returncode == 0, done.stderr
    assert load_state(run / "state.pt")["step"] == step + 2
