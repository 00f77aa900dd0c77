"""Denoising schemes wrapping one backbone: AMSNet and AP-BSN (self-supervised), the
supervised reference and the one-pass student distilled from a teacher."""

from amsnet.methods.amsnet import AMSNet
from amsnet.methods.apbsn import APBSN
from amsnet.methods.base import Batch, LossOutput, Method
from amsnet.methods.distilled import Distilled
from amsnet.methods.supervised import Supervised

__all__ = [
    "APBSN",
    "AMSNet",
    "Batch",
    "Distilled",
    "LossOutput",
    "Method",
    "Supervised",
]
