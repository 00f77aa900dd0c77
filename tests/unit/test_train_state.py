"""Resume states, random-number streams, weight averages and replica fingerprints."""

from __future__ import annotations

import pickle

import pytest
import torch

from amsnet.checkpoint import load_state, save_state
from amsnet.errors import CheckpointError, ConfigError
from amsnet.training.distributed import fingerprint
from amsnet.training.ema import WeightAverage
from amsnet.training.state import capture_rng, mask_seed, process_seed, restore_rng


def test_state_round_trip_reads_back_plain_data(tmp_path):
    state = {
        "step": 7,
        "model": {"w": torch.arange(3.0)},
        "optimizer": {"param_groups": [{"lr": 0.1, "betas": (0.9, 0.99)}], "state": {}},
        "rng": [capture_rng()],
        "best": {"psnr": None, "step": None},
    }
    path = save_state(state, tmp_path / "state.pt")
    loaded = load_state(path)
    assert loaded["step"] == 7 and loaded["format"] == 1
    assert torch.equal(loaded["model"]["w"], torch.arange(3.0))
    assert loaded["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.99)
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]  # no temporary file left


def test_a_state_holding_arbitrary_objects_is_not_loaded(tmp_path):
    path = tmp_path / "state.pt"
    torch.save({"format": 1, "step": 1, "thing": pickle.loads(pickle.dumps(ValueError("x")))}, path)
    with pytest.raises(CheckpointError, match="not a readable resume state"):
        load_state(path)


def test_missing_truncated_and_foreign_states(tmp_path):
    with pytest.raises(CheckpointError, match="without --resume"):
        load_state(tmp_path / "state.pt")
    path = save_state({"step": 1, "model": {"w": torch.zeros(1000)}}, tmp_path / "s.pt")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated"):
        load_state(path)
    torch.save({"step": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="format None"):
        load_state(tmp_path / "other.pt")


def test_rng_states_round_trip():
    torch.manual_seed(5)
    saved = capture_rng()
    first = torch.rand(4)
    restore_rng(saved)
    assert torch.equal(torch.rand(4), first)
    assert saved["torch"].dtype == torch.uint8


def test_mask_and_process_seeds_separate_ranks_and_steps():
    seeds = {mask_seed(0, rank, step) for rank in range(4) for step in range(50)}
    assert len(seeds) == 200 and all(0 <= s < 2**63 for s in seeds)
    assert mask_seed(1, 0, 0) != mask_seed(0, 0, 0)
    assert process_seed(0, 0) != process_seed(0, 1)


def test_weight_average_follows_the_formula_and_ignores_skipped_steps():
    model = torch.nn.BatchNorm2d(2)
    average = WeightAverage(model, decay=0.75)
    with torch.no_grad():
        model.weight.fill_(3.0)
        model.running_mean.fill_(2.0)
    model.num_batches_tracked.fill_(5)
    average.update(model, applied=torch.tensor(False))
    assert torch.equal(average.module.weight, torch.ones(2))  # skipped: unchanged
    average.update(model, applied=torch.tensor(True))
    assert torch.allclose(average.module.weight, torch.full((2,), 1.5))  # 0.75 * 1 + 0.25 * 3
    assert torch.allclose(average.module.running_mean, torch.full((2,), 0.5))
    assert int(average.module.num_batches_tracked) == 5  # integers are copied
    assert not any(p.requires_grad for p in average.module.parameters())


def test_weight_average_state_round_trip_and_mismatch():
    model = torch.nn.Linear(3, 2)
    average = WeightAverage(model, decay=0.9)
    other = WeightAverage(torch.nn.Linear(3, 2), decay=0.5)
    other.load_state_dict(average.state_dict())
    assert other.decay == 0.9 and torch.equal(other.module.weight, average.module.weight)
    with pytest.raises(CheckpointError, match="does not fit"):
        WeightAverage(torch.nn.Linear(4, 2), 0.9).load_state_dict(average.state_dict())
    with pytest.raises(ConfigError, match="decay"):
        WeightAverage(model, decay=1.0)


def test_fingerprint_sees_every_weight_and_buffer():
    model = torch.nn.BatchNorm2d(3)
    same = torch.nn.BatchNorm2d(3)
    assert fingerprint(model) == fingerprint(same)
    same.num_batches_tracked += 1
    assert fingerprint(model) != fingerprint(same)
