"""Side-by-side comparison sheets: the same centre crop of every method's output, labelled.

Used by the demo and the quality study, so readers see what a fraction of a decibel looks like
(checkerboard artefacts of PD, over-smoothing, colour shifts) next to the figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from amsnet.atomic import atomic_path
from amsnet.data.images import to_uint8


def comparison_sheet(
    path: str | Path,
    names: Sequence[str],
    columns: Mapping[str, Sequence[torch.Tensor]],
    clean: Sequence[torch.Tensor] | None,
    scores: Mapping[tuple[str, str], tuple[float, float] | str],
    *,
    size: int = 160,
) -> Path:
    """Write a sheet with one row per image and one column per method, plus the clean image.

    Args:
        path: the image to write (atomically): PNG, or JPEG (quality 92) for a ``.jpg`` /
            ``.jpeg`` suffix, which keeps sheets of real photos small enough for the docs.
        names: image names, one per row.
        columns: ``label -> images``; each image ``(3, H, W)`` in ``[0, 1]``, one per name.
        clean: the clean ``(3, H, W)`` images, one per name (last column), or ``None`` for
            real photos without ground truth (no clean column; the crop is centred on the
            first column's image).
        scores: ``(label, name) -> (psnr, ssim)``, or a line of text, written under each
            label (missing: none).
        size: side of the centre crop, in pixels (smaller images are shown whole).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    from PIL import Image, ImageDraw

    label_height = 30
    labels = [*columns, "clean"] if clean is not None else list(columns)
    sheet = Image.new("RGB", (len(labels) * size, len(names) * (size + label_height)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, name in enumerate(names):
        reference = clean[row] if clean is not None else next(iter(columns.values()))[row]
        h, w = reference.shape[-2:]
        top, left = max((h - size) // 2, 0), max((w - size) // 2, 0)
        y = row * (size + label_height)
        for column, label in enumerate(labels):
            image = clean[row] if clean is not None and label == "clean" else columns[label][row]
            crop = image[:, top : top + size, left : left + size].clamp(0, 1)
            sheet.paste(Image.fromarray(to_uint8(crop)), (column * size, y + label_height))
            text = label.replace(" (oracle sigma)", " oracle")
            text = text.replace(" (estimated sigma)", " est.")
            score = scores.get((label, name))
            if isinstance(score, str):
                text += f"\n{score}"
            elif score is not None:
                value, structure = score
                text += f"\n{value:.2f} dB / {structure:.3f}"
            draw.text((column * size + 3, y + 1), text, fill="black")
    target = Path(path)
    jpeg = target.suffix.lower() in (".jpg", ".jpeg")
    with atomic_path(target) as tmp:
        if jpeg:
            sheet.save(tmp, format="JPEG", quality=92)
        else:
            sheet.save(tmp, format="PNG")
    return target
