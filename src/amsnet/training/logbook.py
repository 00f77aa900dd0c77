"""What a run reports while it trains: progress bar, CSV logs, TensorBoard, sample images.

Only the main process (rank 0) keeps a logbook; the others get a disabled one. The progress
bar (tqdm: step, loss, steps per second, ETA) is off when standard error is not a terminal,
when the environment variable ``CI`` is ``true`` or with ``quiet``; log lines take its place
then. TensorBoard is optional: without the ``tensorboard`` package one line says so and the
run goes on.

``log.csv`` and ``validation.csv`` are appended and flushed row by row; when a run is resumed,
the rows written after its last checkpoint are dropped first, so the files read as if the run
had never stopped.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

import torch

from amsnet.atomic import atomic_path
from amsnet.training.run_folder import RunFolder

log = logging.getLogger("amsnet.training")

VALIDATION_COLUMNS = ("step", "psnr", "ssim_matlab", "ssim_skimage", "seconds", "best")


def progress_bar_wanted(quiet: bool) -> bool:
    """Whether to draw a progress bar: a terminal, not CI, not quiet."""
    if quiet or os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return False
    return sys.stderr.isatty()


def truncate_csv(path: Path, last_step: int) -> None:
    """Drop the rows of ``path`` whose ``step`` is past ``last_step`` (atomic rewrite)."""
    if not path.is_file():
        return
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    kept = [row for row in body if row and row[0].isdigit() and int(row[0]) <= last_step]
    if len(kept) == len(body):
        return
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(kept)


class _CsvLog:
    """An append-only CSV file whose header is fixed by its first row (or the existing file)."""

    def __init__(self, path: Path, columns: tuple[str, ...] | None = None) -> None:
        self.path = path
        self.columns: list[str] | None = list(columns) if columns else None
        self._handle: Any = None
        self._writer: Any = None

    def write(self, row: dict[str, Any]) -> None:
        if self._writer is None:
            self._open(list(row))
        self._writer.writerow({key: _cell(row.get(key)) for key in self.columns or []})
        self._handle.flush()

    def _open(self, first_columns: list[str]) -> None:
        existing = None
        if self.path.is_file() and self.path.stat().st_size:
            with self.path.open(newline="") as handle:
                existing = next(csv.reader(handle), None)
        if existing:
            self.columns = existing
        elif self.columns is None:
            self.columns = first_columns
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a", newline="")
        self._writer = csv.DictWriter(self._handle, fieldnames=self.columns, extrasaction="ignore")
        if not existing:
            self._writer.writeheader()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = self._writer = None


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None else value


class Logbook:
    """The run's reports (see the module docstring).

    Args:
        run: the run folder.
        total_steps: the run's number of steps.
        start_step: the first step of this start (a resumed run's step).
        enabled: False on every process but rank 0 (then nothing is written).
        quiet: no progress bar.
        tensorboard: also write TensorBoard events when the package is there.
    """

    def __init__(
        self,
        run: RunFolder,
        *,
        total_steps: int,
        start_step: int,
        enabled: bool = True,
        quiet: bool = False,
        tensorboard: bool = True,
    ) -> None:
        self.run = run
        self.enabled = enabled
        self.total_steps = total_steps
        self._train = _CsvLog(run.log_csv)
        self._validation = _CsvLog(run.validation_csv, VALIDATION_COLUMNS)
        self._bar: Any = None
        self._writer: Any = None
        self._file_handler: logging.Handler | None = None
        if not enabled:
            return
        run.path.mkdir(parents=True, exist_ok=True)
        truncate_csv(run.log_csv, start_step)
        truncate_csv(run.validation_csv, start_step)
        self._file_handler = logging.FileHandler(run.text_log, encoding="utf-8")
        self._file_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        package_logger = logging.getLogger("amsnet")
        package_logger.addHandler(self._file_handler)
        # The file gets the INFO lines even when the caller configured no logging.
        self._previous_level: int | None = None
        if package_logger.getEffectiveLevel() > logging.INFO:
            self._previous_level = package_logger.level
            package_logger.setLevel(logging.INFO)
        if progress_bar_wanted(quiet):
            try:
                from tqdm import tqdm
            except ImportError:
                log.info("no progress bar: pip install tqdm")
            else:
                self._bar = tqdm(
                    total=total_steps,
                    initial=start_step,
                    unit="step",
                    dynamic_ncols=True,
                    smoothing=0.05,
                )
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.info("TensorBoard logging off (pip install 'amsnet[log]' to turn it on)")
            else:
                self._writer = SummaryWriter(str(run.tensorboard), purge_step=start_step)

    @property
    def has_progress_bar(self) -> bool:
        return self._bar is not None

    def advance(self, steps: int = 1) -> None:
        """Move the progress bar."""
        if self._bar is not None:
            self._bar.update(steps)

    def training(self, step: int, values: dict[str, Any]) -> None:
        """Record a training row: ``step``, ``epoch``, ``loss``, its terms, ``lr``, rates."""
        if not self.enabled:
            return
        row = {"step": step, **values}
        self._train.write(row)
        loss = values.get("loss", math.nan)
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4g}", lr=f"{values.get('lr', 0.0):.2e}")
        else:
            seconds_left = (self.total_steps - step) / max(values.get("steps_per_second", 0), 1e-9)
            log.info(
                "step %d/%d  loss %.4g  lr %.2e  %.2f steps/s  ETA %s",
                step,
                self.total_steps,
                loss,
                values.get("lr", math.nan),
                values.get("steps_per_second", math.nan),
                _duration(seconds_left),
            )
        if self._writer is not None:
            for key, value in values.items():
                if key not in ("step", "epoch") and isinstance(value, int | float):
                    self._writer.add_scalar(f"train/{key}", value, step)

    def validation(self, step: int, metrics: dict[str, float], best: bool) -> None:
        """Record a validation row."""
        if not self.enabled:
            return
        self._validation.write({"step": step, **metrics, "best": int(best)})
        log.info(
            "validation at step %d: PSNR %.3f dB, SSIM %.4f (matlab) / %.4f (skimage)%s",
            step,
            metrics["psnr"],
            metrics["ssim_matlab"],
            metrics["ssim_skimage"],
            "  (best so far)" if best else "",
        )
        if self._writer is not None:
            for key in ("psnr", "ssim_matlab", "ssim_skimage"):
                self._writer.add_scalar(f"val/{key}", metrics[key], step)

    def sample(self, step: int, image: torch.Tensor) -> Path | None:
        """Write a sample image (``(3, H, W)`` float in ``[0, 1]``) as ``samples/step_N.png``."""
        if not self.enabled:
            return None
        from amsnet.data.io import write_image

        path = self.run.samples / f"step_{step:08d}.png"
        write_image(path, image, bit_depth=8, overwrite=True)
        if self._writer is not None:
            self._writer.add_image("val/samples", image, step)
        return path

    def close(self) -> None:
        """Close files, the bar and the TensorBoard writer."""
        self._train.close()
        self._validation.close()
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._file_handler is not None:
            package_logger = logging.getLogger("amsnet")
            package_logger.removeHandler(self._file_handler)
            if self._previous_level is not None:
                package_logger.setLevel(self._previous_level)
            self._file_handler.close()
            self._file_handler = None


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds > 1e8:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
