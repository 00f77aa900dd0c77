"""Convert official AMSNet Lightning checkpoints and AP-BSN ``.pth`` files to amsnet weights.

Only tensors are taken from those files (loaded with ``torch.load(weights_only=True)``, so no
code in them runs); their keys are renamed by the tables below and loaded strictly into our
own implementation of the same network.

* AMSNet (github.com/lll143653/amsnet): a Lightning checkpoint whose ``state_dict`` holds the
  denoiser as ``net.dn.branches.<i>.<backbone key>`` (``ImageDenoiseEnd2End.net`` ->
  ``MultiMaskPdDn.dn`` -> ``MultiMaskBranchDn.branches``). Every released config shares one
  network (``branch_num: 1``), so branch 0 is the model.
* AP-BSN (github.com/wooseoklee4/AP-BSN): ``{"model_weight": {"denoiser": state_dict}}`` with
  the blind-spot network under ``bsn.``.
* A bare backbone state dict (official key names) is accepted too.

The backbone is recognised by matching the renamed keys and shapes against the paper preset
of every registered network, or named explicitly.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from amsnet.build import Method
from amsnet.checkpoint import load_error_reason, load_weights
from amsnet.errors import CheckpointError
from amsnet.methods import AMSNet, APBSN
from amsnet.nets import create_net, list_nets

log = logging.getLogger(__name__)

# Official key -> our key, applied in order (re.sub on the whole key).
RENAMES: dict[str, list[tuple[str, str]]] = {
    "dncnn": [],
    "unet": [],
    "dbsnl": [],
    "nafnet": [(r"\.se\.1\.", ".se.reduce."), (r"\.se\.3\.", ".se.expand.")],
    # The patch embedding is a bare conv, the layer norms are ChannelLayerNorm without the
    # official ``body`` wrapper, and the resizers name their conv.
    "restormer": [
        (r"^patch_embed\.proj\.", "patch_embed."),
        (r"\.(norm[12])\.body\.", r".\1."),
        (r"^(down\d_\d|up\d_\d)\.body\.0\.", r"\1.conv."),
    ],
    "deamnet": [
        (r"\.block\.0\.", "."),
        (r"\.conv2d\.", "."),
        (r"^transform_function\.ext\.", "to_features.project."),
        (r"^transform_function\.pre\.", "to_features.refine."),
        (r"^inverse_transform_function\.ext\.", "to_image.project."),
        (r"^inverse_transform_function\.pre\.", "to_image.refine."),
        (r"^line11\.", "consistency.0."),
        (r"^line22\.", "consistency.1."),
        (r"^line33\.", "consistency.2."),
        (r"^line44\.", "consistency.3."),
        (r"^(consistency\.\d+)\.C\.", r"\1.observation_conv."),
        (r"^(consistency\.\d+)\.cat\.", r"\1.fuse."),
        (r"^(consistency\.\d+)\.weight\.conv_du\.", r"\1.gate."),
        (r"^net2\.conv_dila(\d)\.", r"nlo.unused_conv_dila\1."),
        (r"^net2\.cat1\.", "nlo.unused_cat1."),
        (r"^net2\.e(\d)\.body\.2\.", r"nlo.encoders.\1.down."),
        (r"^net2\.e(\d)\.body\.", r"nlo.encoders.\1.convs."),
        (r"^net2\.attention(\d)\.conv_du\.", r"nlo.skip_gates.\1.gate."),
        (r"^net2\.attention(\d)\.cat\.", r"nlo.skip_gates.\1.fuse."),
        (r"^net2\.attention(\d)\.C\.", r"nlo.skip_gates.\1.skip_conv."),
        (r"^net2\.attention(\d)\.ConvTranspose\.", r"nlo.skip_gates.\1.upsample_conv."),
        (r"^net2\.mid\.", "nlo.middle."),
        (r"^net2\.de(\d)\.upsample\.conv1\.", r"nlo.decoders.\1.skip_conv."),
        (r"^net2\.de(\d)\.upsample\.ConvTranspose\.", r"nlo.decoders.\1.upsample_conv."),
        (r"^net2\.de(\d)\.upsample\.cat\.", r"nlo.decoders.\1.fuse."),
        (r"^net2\.de(\d)\.body\.", r"nlo.decoders.\1.convs."),
        (r"^net2\.final\.", "nlo.final."),
    ],
}

# Official keys that carry no information we need: AP-BSN stores the constant centre mask of
# its masked convolutions as a persistent buffer; ours is rebuilt, not loaded.
DROPPED: dict[str, list[str]] = {
    "dbsnl": [r"^branch[12]\.body\.0\.mask$"],
}

SourceKind = Literal["amsnet", "apbsn", "backbone"]
_BRANCH = re.compile(r"^(?:.*\.)?branches\.(\d+)\.(.+)$")


@dataclass
class OfficialWeights:
    """Tensors of an official checkpoint with the wrapper prefixes removed."""

    kind: SourceKind
    state: dict[str, torch.Tensor]
    path: str


def read_official(source: str | os.PathLike[str] | Mapping[str, Any]) -> OfficialWeights:
    """Load an official checkpoint (or take a loaded one) and strip the wrapper prefixes.

    Raises:
        CheckpointError: missing or unreadable file, or no recognisable state dict inside.
    """
    where = "<in-memory checkpoint>"
    if isinstance(source, Mapping):
        payload: Any = source
    else:
        file = Path(source)
        where = str(file)
        if not file.is_file():
            raise CheckpointError(f"checkpoint {file} does not exist; check the path")
        if file.stat().st_size == 0:
            raise CheckpointError(f"checkpoint {file} is empty (0 bytes); copy it again")
        try:
            payload = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as error:  # any failure of the safe loader is the file's
            raise CheckpointError(
                f"{file} could not be read as a PyTorch checkpoint with weights_only=True "
                f"({load_error_reason(error)}). It may be truncated, not a checkpoint, or hold "
                "Python objects besides tensors; re-save just its state_dict "
                "(torch.save(ckpt['state_dict'], 'plain.pt')) and convert that"
            ) from None
    if not isinstance(payload, Mapping):
        raise CheckpointError(f"{where} holds a {type(payload).__name__}, not a checkpoint dict")
    if isinstance(payload.get("state_dict"), Mapping):
        return _from_lightning(payload["state_dict"], where)
    model_weight = payload.get("model_weight")
    if isinstance(model_weight, Mapping) and isinstance(model_weight.get("denoiser"), Mapping):
        return _from_apbsn(model_weight["denoiser"], where)
    tensors = _tensors(payload, where)
    if any(_BRANCH.match(key) for key in tensors):
        return _from_lightning(tensors, where)
    if any(key.startswith(("bsn.", "module.bsn.")) for key in tensors):
        return _from_apbsn(tensors, where)
    return OfficialWeights("backbone", tensors, where)


def _tensors(state: Mapping[str, Any], where: str) -> dict[str, torch.Tensor]:
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(
            f"{where} contains no tensors: expected an AMSNet Lightning checkpoint "
            "(with 'state_dict'), an AP-BSN checkpoint (with 'model_weight') or a state dict"
        )
    return tensors


def _from_lightning(state: Mapping[str, Any], where: str) -> OfficialWeights:
    branches: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in _tensors(state, where).items():
        match = _BRANCH.match(key)
        if match:
            branches.setdefault(int(match.group(1)), {})[match.group(2)] = value
    if not branches:
        raise CheckpointError(
            f"{where} has a state_dict but no 'branches.<i>.' denoiser keys: it is not an "
            "AMSNet (MultiMaskPdDn) checkpoint"
        )
    if len(branches) > 1:
        log.warning(
            "%s holds %d denoiser branches; only branch 0 is trained by the official code "
            "(it stops after the first branch), so branch 0 is converted",
            where,
            len(branches),
        )
    return OfficialWeights("amsnet", branches[min(branches)], where)


def _from_apbsn(state: Mapping[str, Any], where: str) -> OfficialWeights:
    tensors = _tensors(state, where)
    stripped = {}
    for key, value in tensors.items():
        _, found, rest = key.partition("bsn.")
        if found:
            stripped[rest] = value
    if not stripped:
        raise CheckpointError(f"{where}: no 'bsn.' keys: not an AP-BSN checkpoint")
    return OfficialWeights("apbsn", stripped, where)


def rename_official(state: Mapping[str, torch.Tensor], net: str) -> dict[str, torch.Tensor]:
    """Official backbone keys -> our keys for the registered network ``net``."""
    drops = [re.compile(p) for p in DROPPED.get(net, [])]
    renamed = {}
    for key, value in state.items():
        if any(d.search(key) for d in drops):
            continue
        new = key
        for pattern, replacement in RENAMES.get(net, []):
            new = re.sub(pattern, replacement, new)
        renamed[new] = value
    return renamed


def detect_backbone(state: Mapping[str, torch.Tensor]) -> str:
    """The registered network whose paper preset has exactly these (renamed) keys and shapes.

    Raises:
        CheckpointError: no registered network matches (the message names the closest).
    """
    best, best_overlap = None, -1.0
    for name in list_nets():
        expected = _paper_shapes(name)
        got = {k: v.shape for k, v in rename_official(state, name).items()}
        if got == expected:
            return name
        overlap = len(set(got) & set(expected)) / max(len(set(got) | set(expected)), 1)
        if overlap > best_overlap:
            best, best_overlap = name, overlap
    raise CheckpointError(
        f"the checkpoint's {len(state)} tensors match the paper configuration of none of "
        f"{list_nets()} (closest: {best}, {best_overlap:.0%} of keys in common). Only the "
        "paper configurations can be recognised; for another width or depth pass "
        "backbone=NAME and net_kwargs"
    )


@functools.cache
def _paper_shapes(name: str) -> dict[str, torch.Size]:
    # Built on the meta device: shapes only, no memory, no initialisation cost.
    with torch.device("meta"):
        net = create_net(name, preset="paper")
    return {k: v.shape for k, v in net.state_dict().items()}


def convert_official(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    backbone: str | None = None,
    net_kwargs: Mapping[str, Any] | None = None,
    method: Literal["amsnet", "apbsn"] | None = None,
    **method_kwargs: Any,
) -> Method:
    """Build an amsnet model holding the weights of an official checkpoint.

    Args:
        source: path of an AMSNet ``.ckpt``, an AP-BSN ``.pth`` or a backbone state dict file,
            or such a checkpoint already loaded.
        backbone: registry name of the network (default: recognised from the keys).
        net_kwargs: constructor arguments when the network is not in its paper configuration
            (needs ``backbone``).
        method: ``"amsnet"`` or ``"apbsn"`` (default: from the checkpoint's kind; a bare
            state dict of DBSNl becomes AP-BSN, anything else AMSNet).
        **method_kwargs: settings of the method (defaults: the papers' settings).

    Returns:
        The model in eval mode on the CPU; save it with :func:`amsnet.save_pretrained`.

    Raises:
        CheckpointError: unreadable file, unknown layout or tensors that do not fit.

    Example:
        >>> state = {"net.dn.branches.0." + k: v
        ...          for k, v in create_net("dncnn").state_dict().items()}
        >>> type(convert_official({"state_dict": state})).__name__
        'AMSNet'
    """
    weights = read_official(source)
    if net_kwargs and backbone is None:
        raise CheckpointError("net_kwargs needs backbone=NAME as well")
    name = backbone.lower() if backbone else detect_backbone(weights.state)
    net = create_net(name, preset="paper", **dict(net_kwargs or {}))
    kind = method or ("apbsn" if weights.kind == "apbsn" or name == "dbsnl" else "amsnet")
    cls = APBSN if kind == "apbsn" else AMSNet
    model = cls(net, **method_kwargs)
    state = {f"backbone.{k}": v for k, v in rename_official(weights.state, name).items()}
    load_weights(model, state, f"{weights.path} (as {name})")
    return model.eval()
