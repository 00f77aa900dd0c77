"""Self-supervised schemes wrapping one backbone: AMSNet and AP-BSN."""

from amsnet.methods.amsnet import AMSNet
from amsnet.methods.apbsn import APBSN
from amsnet.methods.base import LossOutput, SelfSupervisedMethod

__all__ = ["APBSN", "AMSNet", "LossOutput", "SelfSupervisedMethod"]
