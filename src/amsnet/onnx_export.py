"""Exporting a model to ONNX: the whole denoising of an image as one graph.

The graph takes one image and returns it denoised, whatever its height and width:

* inputs: ``image`` float32 ``(1, 3, H, W)`` in ``[0, 1]`` (``H``, ``W`` >= :data:`MIN_SIDE`,
  dynamic), ``top`` and ``left`` int64 scalars: the position of the image's first pixel in
  a larger picture (0 and 0 for a whole image; a tile's origin when tiled);
* output: ``denoised`` float32 ``(1, 3, H, W)``, not clamped.

Inside the graph, exactly what :meth:`denoise` does in PyTorch with a
:class:`amsnet.ops.masks.PixelKey` of the export's seed: for an AMSNet, padding to the PD
factor, PD, the keyed partition (the 64-bit coordinate hash of
:func:`amsnet.ops.masks.coordinate_hash`, in ONNX integer ops), the k complementary masked
branches in one backbone call, the stitching and the inverse PD; with variant E also R3's 8
passes (their keyed replacement masks included). A one-pass model (distilled, supervised) is
the backbone; AP-BSN its PD mosaic around DBSNl. So the ONNX result equals PyTorch's
``denoise(image, pixel_key=PixelKey(seed, top, left))`` up to float rounding, tiled or not.

The backbones pad to their own multiple with Python arithmetic on the input's size, which a
traced graph cannot keep for other sizes; here the backbone is wrapped so that the same
reflection is done first by an index gather computed from the (symbolic) size
(:class:`GatherPaddedBackbone`), and the backbone's own padding then provably adds nothing.

The seed is fixed when exporting (``amsnet.seed`` in the file's metadata): a graph holds the
masks of one seed; export again for another.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from amsnet.build import build_method, Method, model_config
from amsnet.errors import CheckpointError, ConfigError
from amsnet.methods import AMSNet
from amsnet.ops.masks import PixelKey
from amsnet.version import __version__

log = logging.getLogger(__name__)

GRAPH_FORMAT = "1"
"""``amsnet.format`` of the ONNX files written here (what :mod:`amsnet.onnx_runtime` reads)."""
DEFAULT_OPSET = 18
"""ONNX opset of the export (18: bitwise integer ops, which the keyed masks need)."""
MIN_SIDE = 2
"""Smallest height and width the graph accepts (a side of 1 cannot be reflected)."""
MAX_SIDE = 1 << 15
"""Largest height and width the export declares (larger photos are tiled)."""
VARIANTS = ("B", "E")
INPUT_NAMES = ("image", "top", "left")
OUTPUT_NAME = "denoised"


def reflect_indices(length: torch.SymInt | int, target: torch.SymInt | int) -> torch.Tensor:
    """Source indices ``(target,)`` int64 that extend an axis of ``length`` to ``target`` by
    reflection at its end, as :func:`amsnet.ops.padding.pad` does (several reflect steps when
    the pad exceeds the axis: a triangle wave of period ``2 * (length - 1)``; a length of 1
    repeats its pixel).

    Example:
        >>> reflect_indices(3, 7).tolist()
        [0, 1, 2, 1, 0, 1, 2]
    """
    period = torch.ones((), dtype=torch.int64) * torch.sym_max(2 * length - 2, 1)
    wave = torch.remainder(torch.arange(target), period)
    return torch.minimum(wave, period - wave)


class GatherPaddedBackbone(nn.Module):
    """A backbone whose reflect padding to its ``size_multiple`` is an index gather.

    Same values as the backbone's own padding (:mod:`amsnet.nets.base`: reflection at the
    bottom and right, cropped back), but expressed through the input's symbolic size, so that
    an exported graph pads any size correctly.

    Args:
        backbone: a registered backbone.

    Shapes: ``(N, C, H, W) -> (N, C, H, W)``.
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.inner = backbone
        self.size_multiple = int(getattr(backbone, "size_multiple", 1))
        self.blind_spot = bool(getattr(backbone, "blind_spot", False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.size_multiple
        if m == 1:
            return self.inner(x)
        height, width = x.shape[-2], x.shape[-1]
        padded_height = (height + m - 1) // m * m
        padded_width = (width + m - 1) // m * m
        padded = x.index_select(-2, reflect_indices(height, padded_height))
        padded = padded.index_select(-1, reflect_indices(width, padded_width))
        return self.inner(padded)[..., :height, :width]


class DenoisingGraph(nn.Module):
    """What the ONNX file computes: a whole image through ``method.denoise`` with masks keyed
    to the pixel positions and ``seed``.

    Args:
        method: the model (on the CPU, float32, eval mode); it is not changed.
        seed: the masks' key.
        refine: variant E (R3 inside the graph).
    """

    def __init__(self, method: Method, *, seed: int, refine: bool) -> None:
        super().__init__()
        self.method = build_method(
            model_config(method), backbone=GatherPaddedBackbone(method.backbone)
        ).eval()
        self.seed = int(seed)
        self.refine = refine

    def forward(self, image: torch.Tensor, top: torch.Tensor, left: torch.Tensor) -> torch.Tensor:
        """``(1, 3, H, W)`` in ``[0, 1]`` and the origin -> ``(1, 3, H, W)``."""
        # One R3 pass per backbone call, as inside tiles; with keyed masks the result does not
        # depend on the grouping of the passes.
        key = PixelKey(self.seed, top, left)  # tensors: the origin is a graph input
        return self.method.denoise(image, refine=self.refine, refine_batch=1, pixel_key=key)


def export_onnx(
    model_or_weights: Method | str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    variant: str = "B",
    seed: int = 0,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
) -> Path:
    """Write an ONNX file that denoises a whole image of any size in one call.

    Args:
        model_or_weights: a loaded method, a ``.safetensors`` weights file or a shipped
            model's name (``amsnet models``).
        path: the ``.onnx`` file to write (atomically).
        variant: ``"B"``, or ``"E"`` with R3 inside the graph (models with masks only; about
            9 times the cost of B, and an export of minutes for large backbones).
        seed: the key of the masks, fixed in the graph (stored as ``amsnet.seed``).
        opset: ONNX opset, at least 18.
        overwrite: replace an existing ``path``.

    Returns:
        The path written.

    Raises:
        ConfigError: a bad variant or opset, an existing file without ``overwrite``, a model
            whose masks cannot be keyed (``partition="balanced"``) or without masks for E.
        CheckpointError: unreadable weights.
    """
    from amsnet.atomic import atomic_path, check_new_output
    from amsnet.zoo import file_sha256, resolve_weights

    if variant not in VARIANTS:
        raise ConfigError(
            f"--variant must be one of {VARIANTS} for an ONNX export, got {variant!r}"
        )
    if opset < DEFAULT_OPSET:
        raise ConfigError(
            f"--opset {opset} lacks the bitwise integer ops of the keyed masks; use "
            f"{DEFAULT_OPSET} or newer"
        )
    source_file: Path | None = None
    inputs: list[Path] = []
    if isinstance(model_or_weights, nn.Module):
        method = copy.deepcopy(model_or_weights)
    else:
        from amsnet.checkpoint import load_pretrained

        source_file = resolve_weights(model_or_weights)
        inputs.append(source_file)
        method = load_pretrained(source_file)
    target = check_new_output(path, overwrite=overwrite, inputs=inputs)
    refine = variant == "E"
    _check_exportable(method, refine)
    method = method.to("cpu", torch.float32, memory_format=torch.contiguous_format).eval()
    method.backbone_dtype = None  # the graph runs in float32
    graph = DenoisingGraph(method, seed=seed, refine=refine).eval()
    proto = _trace(graph, opset)
    metadata = graph_metadata(method, variant=variant, seed=seed, source=source_file)
    if source_file is not None:
        metadata["amsnet.source_sha256"] = file_sha256(source_file)
    import onnx

    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    with atomic_path(target) as tmp:
        onnx.save(proto, str(tmp))
        onnx.checker.check_model(str(tmp), full_check=True)
    return target


def _check_exportable(method: Method, refine: bool) -> None:
    if isinstance(method, AMSNet) and method.settings.partition != "uniform":
        raise ConfigError(
            "this AMSNet draws a 'balanced' partition, which needs a whole sub-image at once and "
            "cannot be keyed to pixel positions inside a graph; export a model trained with "
            "partition 'uniform' (the default)"
        )
    if refine:
        from amsnet.api import check_refinable

        check_refinable(method)


def _trace(graph: DenoisingGraph, opset: int):
    """The ONNX ``ModelProto`` of ``graph`` with dynamic height and width (torch.export)."""
    height = torch.export.Dim("height", min=MIN_SIDE, max=MAX_SIDE)
    width = torch.export.Dim("width", min=MIN_SIDE, max=MAX_SIDE)
    example = (torch.rand(1, 3, 37, 45), torch.tensor(0), torch.tensor(0))
    # The exporter prints its progress on stdout (a command's output should stay ours) and
    # torch's own pytree code warns about itself.
    with contextlib.redirect_stdout(io.StringIO()), torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
        program = torch.onnx.export(
            graph,
            example,
            dynamo=True,
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"image": {2: height, 3: width}, "top": None, "left": None},
            opset_version=opset,
            verbose=False,
        )
    if program is None:  # pragma: no cover (the dynamo exporter always returns its program)
        raise CheckpointError("the ONNX exporter returned no program")
    return program.model_proto


def graph_metadata(
    method: Method, *, variant: str, seed: int, source: Path | None
) -> dict[str, str]:
    """The ``metadata_props`` of an exported file (strings, like safetensors headers).

    ``amsnet.format``, ``amsnet.version``, ``amsnet.name`` (the source's name),
    ``amsnet.variant``, ``amsnet.seed``, ``amsnet.config`` (JSON, as in weights files),
    ``amsnet.tile_multiple`` (the multiple tiles are aligned to), ``amsnet.min_side`` and,
    when the source had them, ``amsnet.card`` (JSON) and ``amsnet.source_sha256``.
    """
    from amsnet.inference import tile_alignment

    metadata = {
        "amsnet.format": GRAPH_FORMAT,
        "amsnet.version": __version__,
        "amsnet.name": source.stem if source is not None else type(method).__name__,
        "amsnet.variant": variant,
        "amsnet.seed": str(int(seed)),
        "amsnet.config": json.dumps(model_config(method), sort_keys=True),
        "amsnet.tile_multiple": str(tile_alignment(method)),
        "amsnet.min_side": str(MIN_SIDE),
    }
    card = _card(source)
    if card is not None:
        metadata["amsnet.card"] = json.dumps(card, sort_keys=True)
    return metadata


def _card(source: Path | None) -> dict[str, Any] | None:
    if source is None:
        return None
    from amsnet.checkpoint import read_header

    return read_header(source).get("card")
