"""The timing helper of ``amsnet bench speed``: how many calls it makes."""

from __future__ import annotations

import torch

from amsnet.studies.bench.speed import timed


def _counting_call():
    calls = []

    def fn() -> None:
        calls.append(len(calls))
        torch.rand(64, 64).matmul(torch.rand(64, 64))

    return fn, calls


def test_warm_up_call_is_not_timed_by_default():
    fn, calls = _counting_call()
    seconds, _ = timed(fn, torch.device("cpu"), 3)
    assert len(calls) == 4 and seconds > 0


def test_without_warm_up_the_first_call_is_timed():
    fn, calls = _counting_call()
    seconds, peak = timed(fn, torch.device("cpu"), 1, warm_up=False)
    assert len(calls) == 1 and seconds > 0
    assert peak is None or peak >= 0
    fn, calls = _counting_call()
    timed(fn, torch.device("cpu"), 3, warm_up=False)
    assert len(calls) == 3
