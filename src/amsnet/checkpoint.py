"""Weights files: ``.safetensors`` with the model configuration in the header.

A weights file is enough to rebuild the model: its metadata (strings only, as safetensors
requires) holds

* ``amsnet.format``: ``"1"``;
* ``amsnet.version``: the package version that wrote it;
* ``amsnet.config``: JSON ``{"method": {...}, "net": {...}}`` (see :mod:`amsnet.config`);
* ``amsnet.metrics`` (optional): JSON of whatever the writer measured;
* ``amsnet.source`` (optional): where the weights came from (e.g. a converted checkpoint);
* ``amsnet.card`` (optional): JSON model card of a shipped model (training data and terms,
  recipe, steps, compute, measured figures; see ``docs/models.md``).

No pickle is involved, so loading a file cannot run code.

A *resume state* (``state.pt``, :func:`save_state` / :func:`load_state`) is separate: the
optimiser, the step, the random-number states and the rest of what a training run needs to
continue exactly. It is written with ``torch.save`` and read with
``torch.load(weights_only=True)``, which accepts only tensors and plain containers, so reading
it cannot run code either; everything in it is a tensor, a number, a string or a container of
those (random-number states are stored as uint8 tensors).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open, SafetensorError
from safetensors.torch import save_file

from amsnet.atomic import atomic_path
from amsnet.build import build_method, Method, model_config
from amsnet.errors import AmsnetError, CheckpointError
from amsnet.version import __version__

FORMAT = "1"
STATE_FORMAT = 1


def save_pretrained(
    method: torch.nn.Module,
    path: str | os.PathLike[str],
    *,
    metrics: dict[str, Any] | None = None,
    source: str | None = None,
    card: dict[str, Any] | None = None,
) -> Path:
    """Write ``method``'s weights and configuration to ``path`` atomically.

    Args:
        method: an :class:`~amsnet.AMSNet` or :class:`~amsnet.APBSN` whose backbone was built
            with :func:`~amsnet.create_net`.
        path: destination, normally ending in ``.safetensors``.
        metrics: optional figures to store (validation PSNR, steps, ...), JSON-serialisable.
        source: optional provenance note.
        card: optional model card (JSON-serialisable), stored as ``amsnet.card``.

    Returns:
        The path written.
    """
    metadata = {
        "amsnet.format": FORMAT,
        "amsnet.version": __version__,
        "amsnet.config": json.dumps(model_config(method), sort_keys=True),
    }
    if metrics is not None:
        metadata["amsnet.metrics"] = json.dumps(metrics, sort_keys=True)
    if source is not None:
        metadata["amsnet.source"] = source
    if card is not None:
        metadata["amsnet.card"] = json.dumps(card, sort_keys=True)
    tensors = {
        key: value.detach().to("cpu", memory_format=torch.contiguous_format).contiguous()
        for key, value in method.state_dict().items()
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The decoded metadata of a weights file: ``format``, ``version``, ``config``, ...

    Raises:
        CheckpointError: missing file, not a safetensors file, or no amsnet configuration.
    """
    file = Path(path)
    if file.is_dir():
        raise CheckpointError(f"{file} is a folder; give a weights file (.safetensors) in it")
    if not file.is_file():
        raise CheckpointError(f"weights file {file} does not exist; check the path")
    if file.stat().st_size == 0:
        raise CheckpointError(f"weights file {file} is empty (0 bytes); copy it again")
    try:
        with safe_open(str(file), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(
            f"{file} is not a readable .safetensors file ({error}). If it is an official "
            f"AMSNet (.ckpt) or AP-BSN (.pth) checkpoint, convert it first: "
            f"amsnet convert {file} -o {file.with_suffix('.safetensors').name}"
        ) from None
    if "amsnet.config" not in metadata:
        raise CheckpointError(
            f"{file} has no amsnet configuration in its header, so the network cannot be "
            "rebuilt. Files written by amsnet (training, convert) carry it; for other "
            "weights, build the model in Python and load the tensors yourself"
        )
    if metadata.get("amsnet.format") != FORMAT:
        raise CheckpointError(
            f"{file} uses weights format {metadata.get('amsnet.format')!r}; this amsnet "
            f"({__version__}) reads format {FORMAT!r}: upgrade amsnet"
        )
    header: dict[str, Any] = {
        "format": metadata["amsnet.format"],
        "version": metadata.get("amsnet.version"),
        "source": metadata.get("amsnet.source"),
    }
    for key in ("config", "metrics", "card"):
        if f"amsnet.{key}" in metadata:
            try:
                header[key] = json.loads(metadata[f"amsnet.{key}"])
            except json.JSONDecodeError:
                raise CheckpointError(
                    f"{file}: the header field amsnet.{key} is not JSON"
                ) from None
    return header


def load_pretrained(path: str | os.PathLike[str], *, device: torch.device | str = "cpu") -> Method:
    """Rebuild the model stored in a weights file and load its weights (strictly).

    Args:
        path: a ``.safetensors`` file written by :func:`save_pretrained` or ``amsnet convert``.
        device: where to put the model.

    Returns:
        The method, in eval mode, on ``device``.

    Raises:
        CheckpointError: unreadable file, missing configuration, or weights that do not fit
            the configured network (the message names the mismatching keys).
    """
    file = Path(path)
    header = read_header(file)
    config = header.get("config")
    try:
        # First on the meta device (shapes, no memory): a crafted header (a width of 200000)
        # must not allocate anything before the tensors in the file have confirmed it.
        with torch.device("meta"):
            skeleton = build_method(config)
    except AmsnetError as error:
        raise CheckpointError(f"{file}: the stored configuration is invalid: {error}") from None
    check_shapes(
        {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}, tensor_shapes(file), file
    )
    method = build_method(config)
    load_weights(method, read_tensors(file), str(file))
    return method.to(device).eval()


def tensor_shapes(path: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor in a weights file, read from its header (no tensor data)."""
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118


def check_shapes(
    expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], where: object
) -> None:
    """Refuse tensors that do not fit a network key for key and shape for shape.

    Raises:
        CheckpointError: naming the missing, unexpected and mis-shaped keys.
    """
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if wrong:
            k = wrong[0]
            parts.append(
                f"{len(wrong)} with another shape (e.g. {k}: file {found[k]}, "
                f"network {expected[k]})"
            )
        raise CheckpointError(
            f"{where}: the weights do not fit the configured network: {'; '.join(parts)}. "
            "The file's configuration and tensors disagree: it was edited or written by an "
            "incompatible tool"
        )


def read_tensors(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, on the CPU (the header is checked first).

    Raises:
        CheckpointError: as :func:`read_header`.
    """
    file = Path(path)
    read_header(file)
    tensors: dict[str, torch.Tensor] = {}
    with safe_open(str(file), framework="pt", device="cpu") as handle:
        for key in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
            tensors[key] = handle.get_tensor(key)
    return tensors


def load_weights(method: torch.nn.Module, tensors: dict[str, torch.Tensor], where: str) -> None:
    """Load ``tensors`` into ``method`` strictly, with a readable error on any mismatch."""
    check_shapes(
        {k: tuple(v.shape) for k, v in method.state_dict().items()},
        {k: tuple(v.shape) for k, v in tensors.items()},
        where,
    )
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(
                f"{where}: the weights contain NaN or infinite values ({key}); the file is "
                "damaged or came from a diverged training run: use another checkpoint"
            )
    method.load_state_dict(tensors, strict=True)


def save_state(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a training run's resume state atomically (a kill never leaves half a file).

    Args:
        state: plain data: tensors, numbers, strings, booleans, ``None`` and lists, tuples or
            dicts of those (what ``torch.load(weights_only=True)`` reads back). The keys
            ``format`` and ``version`` are added.
        path: destination, normally ``RUN/state.pt``.

    Returns:
        The path written.
    """
    payload = {"format": STATE_FORMAT, "version": __version__, **state}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_error_reason(error: BaseException) -> str:
    """The start of a ``torch.load`` error's message, for one line of ours (PyTorch's
    weights-only refusals run to paragraphs)."""
    text = str(error).strip()
    if "Weights only load failed" in text:
        return "it is not a tensors-only checkpoint"
    line = text.splitlines()[0] if text else type(error).__name__
    return line if len(line) <= 160 else line[:157] + "..."


def load_state(
    path: str | os.PathLike[str], *, map_location: torch.device | str = "cpu"
) -> dict[str, Any]:
    """Read a resume state written by :func:`save_state` (no code from the file runs).

    Raises:
        CheckpointError: missing file, not a state file, a state holding more than plain
            data, or a state of another format.
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(
            f"resume state {file} does not exist; start the run without --resume, or give the "
            "run folder that holds state.pt"
        )
    try:
        state = torch.load(file, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or unsafe files
        raise CheckpointError(
            f"{file} is not a readable resume state ({type(error).__name__}: "
            f"{load_error_reason(error)}); it may be truncated or not "
            "written by amsnet: resume from another run folder or start again"
        ) from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{file} is a resume state of format {found!r}; this amsnet ({__version__}) reads "
            f"format {STATE_FORMAT}: resume with the version that wrote it"
        )
    return state
