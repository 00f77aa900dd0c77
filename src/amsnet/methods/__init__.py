"""Denoising schemes wrapping one backbone: AMSNet and AP-BSN (self-supervised) and the
supervised reference."""

from amsnet.methods.amsnet import AMSNet
from amsnet.methods.apbsn import APBSN
from amsnet.methods.base import LossOutput, SelfSupervisedMethod
from amsnet.methods.supervised import Supervised

__all__ = ["APBSN", "AMSNet", "LossOutput", "SelfSupervisedMethod", "Supervised"]
