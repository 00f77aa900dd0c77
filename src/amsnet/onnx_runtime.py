"""Running an exported ONNX file (:mod:`amsnet.onnx_export`) through onnxruntime.

:class:`OnnxModel` offers what the tiling loop of :mod:`amsnet.inference` asks of a model
(``denoise`` with the method contract, the device its inputs go to, the tile multiple, the
settings), so ``amsnet denoise --runtime onnx``, :func:`amsnet.denoise` and
:func:`amsnet.load` run an ``.onnx`` file with the same tiles, blending and file handling as
the PyTorch path. onnxruntime is an optional extra (``pip install amsnet[onnx]``): nothing
here imports it before a file is opened.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amsnet.config import ModelConfig, validate
from amsnet.errors import AmsnetError, CheckpointError, ConfigError, ShapeError
from amsnet.ops.checks import check_bchw
from amsnet.ops.masks import PixelKey

INSTALL_HINT = "pip install amsnet[onnx]"
MAX_TILE_MULTIPLE = 1024


def import_onnxruntime() -> Any:
    """The ``onnxruntime`` module, or a :class:`ConfigError` saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(
            f"running ONNX files needs onnxruntime, which is not installed: {INSTALL_HINT} "
            "(or run the PyTorch model: --runtime torch)"
        ) from None
    return onnxruntime


class OnnxModel:
    """An exported ``.onnx`` file, ready to denoise (CPU, or CUDA where onnxruntime has it).

    Args:
        path: the file written by :func:`amsnet.onnx_export.export_onnx`.
        device: ``auto`` (CUDA when onnxruntime offers it, else the CPU), ``cpu``, ``cuda``
            or ``cuda:N``.

    Attributes:
        variant: ``"B"`` or ``"E"`` (R3 inside the graph).
        seed: the key the graph's masks were exported with.
        tile_multiple: the multiple tile origins and sizes are aligned to.
        settings: the source method's settings (as in its weights file).
        config: the source's model configuration.
        card: the source's model card, or ``None``.

    Raises:
        ConfigError: onnxruntime is missing, or the device is unavailable.
        CheckpointError: the file is missing, not a readable ONNX file, or not one amsnet
            exported (its metadata is checked).
    """

    device = torch.device("cpu")
    """Where the tiling loop puts the input tensors (onnxruntime takes host arrays)."""

    def __init__(self, path: str | os.PathLike[str], *, device: str = "auto") -> None:
        ort = import_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"ONNX file {self.path} does not exist; check the path")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # the optimiser's notes on constant folding are noise
        # Idle worker threads would otherwise spin for a while after each call, taking the
        # cores from the tile blending and the file writing between calls (and from PyTorch
        # when both run in one process, as in benchmarks/bench_onnx.py).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=_providers(ort, device)
            )
        except Exception as error:  # onnxruntime raises its own, undocumented error types
            raise CheckpointError(
                f"{self.path} is not a readable ONNX file ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:200]}); export it again with amsnet export"
            ) from None
        self._read_metadata(self.session.get_modelmeta().custom_metadata_map)
        self._inputs = {item.name for item in self.session.get_inputs()}
        if "image" not in self._inputs:
            raise CheckpointError(
                f"{self.path} has no input named 'image'; it was not written by amsnet export"
            )

    @classmethod
    def from_weights(
        cls,
        weights: str | os.PathLike[str],
        *,
        variant: str = "B",
        seed: int = 0,
        device: str = "auto",
    ) -> OnnxModel:
        """Export a weights file or shipped model to a temporary ONNX file and open it (the
        file is deleted once loaded; export once with ``amsnet export`` to reuse a graph)."""
        from amsnet.onnx_export import export_onnx

        with tempfile.TemporaryDirectory(prefix="amsnet-onnx-") as folder:
            path = export_onnx(weights, Path(folder) / "model.onnx", variant=variant, seed=seed)
            return cls(path, device=device)

    def _read_metadata(self, metadata: dict[str, str]) -> None:
        from amsnet.onnx_export import GRAPH_FORMAT, MIN_SIDE, VARIANTS

        where = self.path
        if metadata.get("amsnet.format") != GRAPH_FORMAT:
            raise CheckpointError(
                f"{where} is not an amsnet ONNX export of format {GRAPH_FORMAT!r} (found "
                f"{metadata.get('amsnet.format')!r}); export it with amsnet export"
            )
        try:
            self.variant = metadata["amsnet.variant"]
            self.seed = int(metadata["amsnet.seed"])
            self.tile_multiple = int(metadata["amsnet.tile_multiple"])
            self.min_side = int(metadata.get("amsnet.min_side", MIN_SIDE))
            self.config = json.loads(metadata["amsnet.config"])
            self.card = json.loads(metadata["amsnet.card"]) if "amsnet.card" in metadata else None
        except (KeyError, ValueError) as error:
            raise CheckpointError(
                f"{where}: its amsnet metadata is incomplete or damaged ({error}); export it "
                "again with amsnet export"
            ) from None
        if self.variant not in VARIANTS:
            raise CheckpointError(f"{where}: unknown variant {self.variant!r} in its metadata")
        if not 1 <= self.tile_multiple <= MAX_TILE_MULTIPLE or not 1 <= self.min_side <= 64:
            raise CheckpointError(
                f"{where}: implausible sizes in its metadata (tile multiple "
                f"{self.tile_multiple}, smallest side {self.min_side}); export it again"
            )
        try:
            self.settings = validate(ModelConfig, self.config, f"{where}: amsnet.config").method
        except AmsnetError as error:
            raise CheckpointError(
                f"{where}: the stored configuration is invalid: {error}"
            ) from None
        self.name = metadata.get("amsnet.name", self.path.stem)

    @property
    def masked(self) -> bool:
        """True when the graph draws masks (AMSNet, or R3): its seed then matters."""
        return self.settings.name == "amsnet" or self.variant == "E"

    def check_variant(self, refine: bool) -> None:
        """Raise before any work when the graph's variant is not the one asked for.

        Raises:
            ConfigError: naming the file, its variant and the fix.
        """
        wanted = "E" if refine else "B"
        if wanted != self.variant:
            raise ConfigError(
                f"{self.path} holds variant {self.variant}, not {wanted}; pass --variant "
                f"{self.variant}, or export the model again with amsnet export --variant {wanted}"
            )

    def check_seed(self, seed: int) -> None:
        """Raise when ``seed`` is not the one the graph's masks were exported with.

        Raises:
            ConfigError: naming the file's seed and the fix.
        """
        if self.masked and seed != self.seed:
            raise ConfigError(
                f"{self.path} holds the masks of seed {self.seed}, not {seed}; pass --seed "
                f"{self.seed}, or export again with amsnet export --seed {seed}"
            )

    def denoise(
        self,
        noisy: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        refine: bool = False,
        refine_batch: int | None = None,
        pixel_key: PixelKey | None = None,
    ) -> torch.Tensor:
        """Denoise a batch, one image per graph call.

        Args:
            noisy: ``(B, 3, H, W)`` float in ``[0, 1]``, ``H`` and ``W`` at least
                ``min_side``.
            generator: unused (the graph's masks are keyed to the pixel positions).
            refine: must match the graph's variant (``E``: True).
            refine_batch: unused (the graph runs one R3 pass per backbone call).
            pixel_key: the seed and the tile's origin (default: the graph's seed, origin 0).

        Returns:
            Float32 ``(B, 3, H, W)`` on the CPU, not clamped.

        Raises:
            ConfigError: another variant or seed than the graph's.
            ShapeError: not 3 channels, or a side below ``min_side``.
        """
        check_bchw(noisy, "noisy")
        self.check_variant(refine)
        key = pixel_key if pixel_key is not None else PixelKey(self.seed)
        self.check_seed(int(key.key))
        _, c, h, w = noisy.shape
        if c != 3 or min(h, w) < self.min_side:
            raise ShapeError(
                f"the ONNX graph takes RGB images of at least {self.min_side}x{self.min_side} "
                f"pixels, got {c} channels, {h}x{w}"
            )
        array = noisy.detach().to("cpu", torch.float32).numpy()
        outputs = []
        for image in array:
            feed: dict[str, np.ndarray] = {"image": np.ascontiguousarray(image[None])}
            if "top" in self._inputs:
                feed["top"] = np.array(int(key.top), dtype=np.int64)
            if "left" in self._inputs:
                feed["left"] = np.array(int(key.left), dtype=np.int64)
            outputs.append(self.session.run(None, feed)[0])
        return torch.from_numpy(np.concatenate(outputs, axis=0))

    def __repr__(self) -> str:
        providers = ", ".join(self.session.get_providers())
        return (
            f"OnnxModel({str(self.path)!r}, variant={self.variant}, seed={self.seed}, {providers})"
        )


def _providers(ort: Any, device: str) -> list[Any]:
    """onnxruntime's execution providers for ``device`` (CUDA first where asked and offered)."""
    key = device.lower()
    available = ort.get_available_providers()
    has_cuda = "CUDAExecutionProvider" in available
    if key in ("auto", "cpu"):
        return (["CUDAExecutionProvider"] if key == "auto" and has_cuda else []) + [
            "CPUExecutionProvider"
        ]
    if key.startswith("cuda"):
        if not has_cuda:
            raise ConfigError(
                f"device {device!r} asked for, but this onnxruntime has no CUDA provider "
                "(install onnxruntime-gpu); use --device cpu"
            )
        index = key.partition(":")[2] or "0"
        if not index.isdigit():
            raise ConfigError(f"unknown device {device!r}; use cpu, cuda or cuda:N")
        return [("CUDAExecutionProvider", {"device_id": int(index)}), "CPUExecutionProvider"]
    raise ConfigError(f"the ONNX runtime runs on cpu or cuda, not {device!r}")
