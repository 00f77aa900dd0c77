"""``amsnet.memory.peak_memory``: a block's peak, not what earlier work left in the heap."""

from __future__ import annotations

import sys

import pytest
import torch

from amsnet.memory import peak_memory
from amsnet.runtime import tune_cpu_allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="resident peak needs /proc")
def test_cpu_peak_sees_a_block_that_reuses_memory_freed_before():
    tune_cpu_allocator()  # freed buffers then stay in the heap unless trimmed
    size = 64 << 20
    # 128 MiB touched and freed before the block: without trimming, the block's 64 MiB would
    # be served from these resident pages and read as no growth at all.
    earlier = torch.ones(size // 2)
    del earlier
    with peak_memory("cpu") as peak:
        x = torch.ones(size // 4)
        del x
    if peak.bytes is None:
        pytest.skip("/proc/self/clear_refs is not writable here")
    assert peak.bytes >= 0.9 * size


def test_devices_without_a_peak_counter_report_none():
    with peak_memory("meta") as peak:
        torch.ones(4, device="meta")
    assert peak.bytes is None
