"""The tiniest arguments of every registered backbone, for fast contract tests.

A backbone registered without an entry here makes ``test_every_net_has_tiny_arguments`` fail,
so no network escapes the contract tests.
"""

from __future__ import annotations

from typing import Any

TINY: dict[str, dict[str, Any]] = {
    "dbsnl": {"width": 8, "num_blocks": 1},
    "deamnet": {"width": 8, "iterations": 2, "gate_reduction": 4, "official_unused_layers": False},
    "dncnn": {"width": 8, "depth": 3},
    "nafnet": {
        "width": 4,
        "encoder_blocks": (1, 1, 1, 1),
        "middle_blocks": 1,
        "decoder_blocks": (1, 1, 1, 1),
    },
    "restormer": {
        "width": 8,
        "num_blocks": (1, 1, 1, 1),
        "num_refinement_blocks": 1,
        "heads": (1, 1, 1, 1),
    },
    "unet": {"width": 8, "output_width": 8},
}

# Parameter counts of the supplement's Table 1 (DnCNN: the standard colour DnCNN-17, because
# the table's 5.898M matches no released configuration).
PAPER_PARAMETERS = {
    "dbsnl": 3_656_131,
    "deamnet": 2_228_131,
    "dncnn": 559_363,
    "nafnet": 29_056_227,
    "restormer": 26_111_668,
    "unet": 7_935_555,
}
