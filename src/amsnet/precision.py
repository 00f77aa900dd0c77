"""Which floating-point precision the backbone runs in: fp32, or bfloat16 / float16.

Only the backbone (the paper's denoiser D_E) runs in reduced precision, under
:func:`torch.autocast`; the input, the masks, PD, the stitching of the k branches, R3's
bookkeeping, the losses and the output stay float32 (:func:`run_backbone` hands float32 back).

``auto`` (the default everywhere a network runs) picks:

* CUDA: bfloat16 where the GPU supports it, else float16;
* a CPU with native bfloat16 arithmetic (the ``avx512_bf16`` or ``amx_bf16`` flag of
  ``/proc/cpuinfo``): bfloat16. On other CPUs oneDNN *emulates* bfloat16 by converting to
  float32 around every kernel, which is slower than float32 itself, so ``auto`` stays fp32;
* anything else (Apple MPS, other systems, a CPU whose flags cannot be read): fp32;
* fp32 for a model whose card says reduced precision costs it quality
  (``reduced_precision_ok: false``, :mod:`amsnet.zoo`).

An explicit ``bf16`` or ``fp16`` is honoured (with a warning where it is emulated).

Measured on the project's 2-core Xeon with AMX (``benchmarks/bench_precision.py``): AMSNet B
at 256x256 runs 3.2x (UNet), 3.4x (DnCNN), 3.5x (DeamNet), 1.6x (Restormer), 1.4x (NAFNet)
and AP-BSN 4.1x (DBSNl) faster in bfloat16 with channels-last weights, paper presets; see
``docs/precision.md`` for every figure.
"""

from __future__ import annotations

import functools
import logging
import platform

import torch
from torch import nn

from amsnet.config import PRECISIONS
from amsnet.errors import ConfigError

log = logging.getLogger(__name__)

_DTYPES: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""x86 CPU flags of native bfloat16 arithmetic (AVX512-BF16 dot products, AMX tiles)."""
NATIVE_FP16_FLAGS = frozenset({"avx512_fp16", "amx_fp16"})


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """True when this x86 CPU computes in bfloat16 natively (AVX512-BF16 or AMX-BF16).

    Decided from the CPU flags only: ARM's ``bf16`` flag is not trusted yet (untested here),
    so such machines get fp32 from ``auto`` (pass ``--precision bf16`` to try it).
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    return bool(cpu_flags() & NATIVE_BF16_FLAGS)


def check_precision(name: str, flag: str = "--precision") -> str:
    """``name`` lower-cased if it is one of :data:`PRECISIONS`, else :class:`ConfigError`."""
    key = str(name).lower()
    if key not in PRECISIONS:
        raise ConfigError(f"{flag}: unknown precision {name!r}; choose one of {PRECISIONS}")
    return key


def resolve_precision(
    name: str,
    device: torch.device | str,
    *,
    reduced_ok: bool = True,
    flag: str = "--precision",
) -> torch.dtype | None:
    """The dtype the backbone runs in (``None``: float32) for ``name`` on ``device``.

    Args:
        name: ``auto``, ``fp32``, ``bf16`` or ``fp16`` (see the module docstring).
        device: where the backbone runs.
        reduced_ok: what the model's card says; ``False`` makes ``auto`` choose fp32.
        flag: the option named in messages.

    Raises:
        ConfigError: an unknown name, or a reduced precision the GPU cannot run.
    """
    key = check_precision(name, flag)
    target = torch.device(device)
    if key == "auto":
        if not reduced_ok:
            return None
        if target.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if target.type == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16
        return None
    dtype = _DTYPES[key]
    if dtype is None or target.type == "meta":
        return dtype
    if target.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"{flag} bf16: this GPU has no bfloat16 support; use fp16 or fp32")
    if target.type == "cpu":
        native = NATIVE_BF16_FLAGS if dtype == torch.bfloat16 else NATIVE_FP16_FLAGS
        if not cpu_flags() & native:
            log.warning(
                "%s %s: this CPU has no native %s arithmetic (flags %s); it is emulated and "
                "usually slower than fp32",
                flag,
                key,
                key,
                "/".join(sorted(native)),
            )
    return dtype


def choose_precision(
    method: nn.Module,
    name: str,
    device: torch.device | str,
    *,
    card: dict | None = None,
    flag: str = "--precision",
) -> torch.dtype | None:
    """The dtype ``method``'s backbone should run in for ``name`` (see the module docstring).

    ``auto`` also listens to the model: fp32 when its card (``card["reduced_precision"]``,
    written by ``benchmarks/bench_precision.py``) says reduced precision costs quality or is
    not faster, and fp32 on a CPU for a backbone that declares ``reduced_precision_pays =
    False`` (the small NAFNet and Restormer: their time goes to layer norms and element-wise
    chains, which bfloat16 does not speed up on a CPU, so autocast's conversions make them
    slower). An explicit ``bf16`` / ``fp16`` is always honoured.
    """
    key = check_precision(name, flag)
    target = torch.device(device)
    reduced_ok = True
    if key == "auto":
        verdict = (card or {}).get("reduced_precision")
        if not isinstance(verdict, dict):  # absent, or an older card's "not measured"
            verdict = {}
        if verdict.get("keeps_quality") is False:
            reduced_ok = False
        if target.type == "cpu" and (
            verdict.get("faster_on_cpu") is False
            or not getattr(getattr(method, "backbone", method), "reduced_precision_pays", True)
        ):
            reduced_ok = False
    dtype = resolve_precision(key, target, reduced_ok=reduced_ok, flag=flag)
    log.debug("backbone precision %s (asked %s on %s)", precision_name(dtype), key, target)
    return dtype


def precision_name(dtype: torch.dtype | None) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for a dtype from :func:`resolve_precision`."""
    for key, value in _DTYPES.items():
        if value == dtype:
            return key
    raise ValueError(f"not a precision dtype: {dtype}")


def run_backbone(
    backbone: nn.Module, inputs: torch.Tensor, dtype: torch.dtype | None
) -> torch.Tensor:
    """``backbone(inputs)``, under autocast to ``dtype`` when given, returned as float32.

    Args:
        backbone: the denoiser.
        inputs: float32 ``(B, C, H, W)``.
        dtype: ``None`` (float32), ``torch.bfloat16`` or ``torch.float16``.

    Returns:
        The backbone's output, float32 ``(B, C, H, W)``.
    """
    if dtype is None:
        return backbone(inputs)
    with torch.autocast(device_type=inputs.device.type, dtype=dtype):
        outputs = backbone(inputs)
    return outputs.float()


def set_precision(method: nn.Module, dtype: torch.dtype | None) -> nn.Module:
    """Make ``method`` run its backbone in ``dtype`` (``None``: float32); returns it."""
    method.backbone_dtype = dtype
    return method


def backbone_dtype(method: nn.Module) -> torch.dtype | None:
    """The dtype ``method``'s backbone runs in (``None``: float32)."""
    return getattr(method, "backbone_dtype", None)
