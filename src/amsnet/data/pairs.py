"""Noisy/clean image pairs of a folder, matched by a name rule, for evaluation.

:class:`PairedFolder` yields full noisy/clean pairs (optionally a random crop with the same
geometry for both, :mod:`amsnet.data.crops`) matched by a name rule (:data:`PAIR_RULES`):
``"polyu"`` (``X_real.JPG`` or ``X_Real.JPG`` with ``X_mean.JPG``), ``"cc"`` (``X_real.png``
with ``X_mean.png``), ``"regex"`` (two patterns with a ``key`` group), ``"folders"`` (two
folders with the same relative names) or ``"csv"`` (a ``pairs.csv`` with ``noisy`` and
``clean``/``gt`` columns).
"""

from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from amsnet.data.crops import (
    check_epoch,
    check_positive,
    check_seed,
    crop_tensor,
    item_generator,
    random_crop_origin,
)
from amsnet.data.folders import list_images
from amsnet.data.io import read_image
from amsnet.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

PAIR_RULES: tuple[str, ...] = ("polyu", "cc", "regex", "folders", "csv")
_RULE_PATTERNS = {
    "polyu": (r"(?P<key>.+)_real\.jpe?g", r"(?P<key>.+)_mean\.jpe?g"),
    "cc": (r"(?P<key>.+)_real\.png", r"(?P<key>.+)_mean\.png"),
}
_CLEAN_COLUMNS = ("clean", "gt", "mean", "target")


class PairedFolder(Dataset):
    """Noisy/clean image pairs matched by a name rule, for evaluation.

    Args:
        root: folder of the noisy images (and, except for ``rule="folders"``, the clean ones).
        rule: ``"polyu"``, ``"cc"``, ``"regex"``, ``"folders"`` or ``"csv"``:

            * ``"polyu"``: ``X_real.JPG`` / ``X_Real.JPG`` with ``X_mean.JPG`` (suffix and
              marker case-insensitive, ``.jpg`` or ``.jpeg``), in the same folder;
            * ``"cc"``: ``X_real.png`` with ``X_mean.png``;
            * ``"regex"``: ``noisy_pattern`` and ``clean_pattern`` are regular expressions with
              a group named ``key``, matched against the whole path relative to ``root``
              (``/``-separated, suffix included); equal keys pair;
            * ``"folders"``: ``root`` holds the noisy and ``clean_root`` the clean images under
              the same relative paths (the suffix may differ);
            * ``"csv"``: ``pairs_csv`` (default ``root/pairs.csv``) has a ``noisy`` column and a
              ``clean``, ``gt``, ``mean`` or ``target`` column of paths relative to its folder.
        clean_root: the clean folder for ``rule="folders"``.
        noisy_pattern: for ``rule="regex"``.
        clean_pattern: for ``rule="regex"``.
        pairs_csv: for ``rule="csv"``.
        strict: a noisy image without a clean partner raises :class:`DataError` listing all
            of them; with ``strict=False`` they are skipped with a logged warning.
        crop_size: ``None`` (default) for full images, else a random square crop with the
            same position in both images (reflect-padded if the image is smaller).
        seed: with the epoch and index, fixes the crops.
        recursive: also pair images in sub-folders.

    Items: ``{"noisy": (3, H, W), "clean": (3, H, W), "name": str}``, float32 in ``[0, 1]``;
    ``name`` is the noisy file's path relative to ``root`` without its suffix. Grayscale
    images are repeated to three channels. ``pairs`` holds the ``(noisy, clean)`` paths.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        rule: str = "polyu",
        clean_root: str | os.PathLike[str] | None = None,
        noisy_pattern: str | None = None,
        clean_pattern: str | None = None,
        pairs_csv: str | os.PathLike[str] | None = None,
        strict: bool = True,
        crop_size: int | None = None,
        seed: int = 0,
        recursive: bool = True,
    ) -> None:
        if rule not in PAIR_RULES:
            raise ConfigError(f"rule must be one of {PAIR_RULES}, got {rule!r}")
        if crop_size is not None:
            check_positive("crop_size", crop_size)
        check_seed(seed)
        self.root = Path(root)
        self.rule = rule
        self.strict = strict
        self.crop_size = crop_size
        self.seed = seed
        self.epoch = 0
        if rule in ("polyu", "cc", "regex"):
            matched, unmatched = self._match_patterns(rule, noisy_pattern, clean_pattern, recursive)
            name_root = self.root
        elif rule == "folders":
            if clean_root is None:
                raise ConfigError('rule="folders" needs clean_root, the folder of clean images')
            matched, unmatched = self._match_folders(Path(clean_root), recursive)
            name_root = self.root
        else:
            csv_path = Path(pairs_csv) if pairs_csv is not None else self.root / "pairs.csv"
            matched, unmatched = self._match_csv(csv_path)
            name_root = csv_path.parent
        if unmatched:
            listed = ", ".join(unmatched[:10]) + (" ..." if len(unmatched) > 10 else "")
            message = (
                f"{len(unmatched)} noisy image(s) in {self.root} have no clean partner under "
                f'rule "{rule}": {listed}'
            )
            if strict:
                raise DataError(
                    f"{message}; add the missing clean files, fix the names, or pass "
                    "strict=False (Python) to skip them"
                )
            logger.warning("%s; skipped", message)
        if not matched:
            raise DataError(
                f'no noisy/clean pairs found in {self.root} under rule "{rule}"; check the '
                "folder and the rule (polyu: X_real.JPG + X_mean.JPG, cc: X_real.png + "
                "X_mean.png)"
            )
        self.pairs: list[tuple[Path, Path]] = sorted(matched)
        self.names = [_relative_stem(noisy, name_root) for noisy, _ in self.pairs]

    def _match_patterns(
        self, rule: str, noisy_pattern: str | None, clean_pattern: str | None, recursive: bool
    ) -> tuple[list[tuple[Path, Path]], list[str]]:
        if rule == "regex":
            if noisy_pattern is None or clean_pattern is None:
                raise ConfigError(
                    'rule="regex" needs noisy_pattern and clean_pattern, regular expressions '
                    r'with a group named key, e.g. r"(?P<key>.+)_noisy\.png"'
                )
            patterns = [_compile(noisy_pattern, 0), _compile(clean_pattern, 0)]
        else:
            noisy_text, clean_text = _RULE_PATTERNS[rule]
            patterns = [_compile(noisy_text, re.IGNORECASE), _compile(clean_text, re.IGNORECASE)]
        noisy_files: dict[str, Path] = {}
        clean_files: dict[str, Path] = {}
        for path in list_images(self.root, recursive=recursive):
            relative = path.relative_to(self.root).as_posix()
            for pattern, found in zip(patterns, (noisy_files, clean_files), strict=True):
                match = pattern.fullmatch(relative)
                if match is None:
                    continue
                key = match.group("key")
                if key in found:
                    raise DataError(
                        f"{found[key]} and {path} both match the same pair key {key!r}; "
                        "remove one of them"
                    )
                found[key] = path
                break
        matched = [
            (noisy, clean_files[key]) for key, noisy in noisy_files.items() if key in clean_files
        ]
        unmatched = sorted(
            noisy.relative_to(self.root).as_posix()
            for key, noisy in noisy_files.items()
            if key not in clean_files
        )
        return matched, unmatched

    def _match_folders(
        self, clean_root: Path, recursive: bool
    ) -> tuple[list[tuple[Path, Path]], list[str]]:
        clean_files: dict[str, Path] = {}
        for path in list_images(clean_root, recursive=recursive):
            key = path.relative_to(clean_root).with_suffix("").as_posix()
            if key in clean_files:
                raise DataError(
                    f"{clean_files[key]} and {path} have the same name up to the suffix; "
                    "remove one of them"
                )
            clean_files[key] = path
        matched, unmatched = [], []
        for noisy in list_images(self.root, recursive=recursive):
            key = noisy.relative_to(self.root).with_suffix("").as_posix()
            if key in clean_files:
                matched.append((noisy, clean_files[key]))
            else:
                unmatched.append(noisy.relative_to(self.root).as_posix())
        return matched, unmatched

    def _match_csv(self, csv_path: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
        if not csv_path.is_file():
            raise DataError(f"pairs file {csv_path} does not exist; check the path")
        try:
            with open(csv_path, newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
                columns = rows[0].keys() if rows else []
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            raise DataError(f"cannot read the pairs file {csv_path} ({error})") from error
        clean_column = next((name for name in _CLEAN_COLUMNS if name in columns), None)
        if "noisy" not in columns or clean_column is None:
            raise DataError(
                f"{csv_path} needs a header with a 'noisy' column and one of "
                f"{', '.join(_CLEAN_COLUMNS)}; found {list(columns)}"
            )
        folder = csv_path.parent
        matched, unmatched = [], []
        for row in rows:
            noisy = folder / row["noisy"]
            clean = folder / row[clean_column]
            if not noisy.is_file():
                raise DataError(
                    f"{csv_path} lists {row['noisy']}, which does not exist in {folder}"
                )
            if clean.is_file():
                matched.append((noisy, clean))
            else:
                unmatched.append(f"{row['noisy']} (missing {row[clean_column]})")
        return matched, unmatched

    def __len__(self) -> int:
        return len(self.pairs)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose random crops the next items use (only with ``crop_size``)."""
        check_epoch(epoch)
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        noisy_path, clean_path = self.pairs[index]
        noisy = read_image(noisy_path)
        clean = read_image(clean_path)
        if (noisy.height, noisy.width) != (clean.height, clean.width):
            raise DataError(
                f"{noisy_path} is {noisy.height}x{noisy.width} but its clean partner "
                f"{clean_path} is {clean.height}x{clean.width}; the pair must have one size"
            )
        if noisy.orientation != clean.orientation:
            logger.warning(
                "%s has EXIF orientation %d and %s has %d: check that the pair is aligned",
                noisy_path,
                noisy.orientation,
                clean_path,
                clean.orientation,
            )
        noisy_pixels, clean_pixels = noisy.rgb, clean.rgb
        if self.crop_size is not None:
            generator = item_generator(self.seed, self.epoch, index)
            top, left = random_crop_origin(noisy.height, noisy.width, self.crop_size, generator)
            noisy_pixels = crop_tensor(noisy_pixels, top, left, self.crop_size)
            clean_pixels = crop_tensor(clean_pixels, top, left, self.crop_size)
        return {"noisy": noisy_pixels, "clean": clean_pixels, "name": self.names[index]}


def _compile(pattern: str, flags: int) -> re.Pattern[str]:
    try:
        compiled = re.compile(pattern, flags)
    except re.error as error:
        raise ConfigError(f"invalid regular expression {pattern!r}: {error}") from error
    if "key" not in compiled.groupindex:
        raise ConfigError(
            f"pattern {pattern!r} has no group named key; write the shared part as (?P<key>...)"
        )
    return compiled


def _relative_stem(path: Path, root: Path) -> str:
    try:
        relative = path.relative_to(root)
    except ValueError:
        relative = Path(path.name)
    return relative.with_suffix("").as_posix()
