"""Exact resume: N steps in one run equal N/2 steps, a resume, and N/2 more (bit for bit)."""

from __future__ import annotations

import csv

import pytest
import torch

from amsnet.checkpoint import load_state, read_tensors
from amsnet.training import Trainer
from tests.integration.test_train_trainer import image_folders, tiny_config


def assert_same(first, second, where=""):
    """Recursive bit-exact comparison of resume-state contents."""
    if isinstance(first, torch.Tensor):
        assert torch.equal(first, second), where
    elif isinstance(first, dict):
        assert first.keys() == second.keys(), where
        for key in first:
            assert_same(first[key], second[key], f"{where}.{key}")
    elif isinstance(first, list | tuple):
        assert len(first) == len(second), where
        for index, (a, b) in enumerate(zip(first, second, strict=True)):
            assert_same(a, b, f"{where}[{index}]")
    else:
        assert first == second, where


@pytest.mark.parametrize("workers", [0, 2])
def test_an_interrupted_run_continues_exactly(tmp_path, workers):
    root = image_folders(tmp_path)
    settings = (
        f"data.train.workers={workers}",
        "train.steps=8",
        "train.val_every=4",
        "train.checkpoint_every=100",
        "train.ema_decay=0.8",
        "train.grad_clip=0.5",
        "train.schedule={name: cosine, warmup_steps: 2}",
        "data.train.rotate=true",
    )
    whole = Trainer(tiny_config(root, *settings), run_dir=tmp_path / "whole", quiet=True).fit()
    parts = tmp_path / "parts"
    first = Trainer(tiny_config(root, *settings), run_dir=parts, quiet=True).fit(until=4)
    assert first.interrupted and first.step == 4
    second = Trainer(tiny_config(root, *settings), run_dir=parts, quiet=True, resume=True).fit()
    assert second.step == 8 and second.fingerprints == whole.fingerprints
    assert (second.best_psnr, second.best_step) == (whole.best_psnr, whole.best_step)
    expected, resumed = load_state(whole.run_dir / "state.pt"), load_state(parts / "state.pt")
    for key in ("model", "optimizer", "ema", "rng", "best", "counters", "step", "data"):
        assert_same(expected[key], resumed[key], key)
    weights = read_tensors(whole.last_path)
    assert_same(weights, read_tensors(second.last_path), "last.safetensors")
    assert log_rows(parts / "log.csv") == log_rows(whole.run_dir / "log.csv")


def log_rows(path):
    """The rows of log.csv without the timing columns (which differ from run to run)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    timing = ("steps_per_second", "crops_per_second")
    return [{k: v for k, v in row.items() if k not in timing} for row in rows]
