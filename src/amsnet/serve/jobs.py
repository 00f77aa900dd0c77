"""The web page's work queue: uploads become jobs, one worker thread denoises them in turn.

A CPU has no spare cores for two photos at once (each already uses all of them), so jobs never
run concurrently: the worker takes them first come, first served, and the page shows each
one's place in the queue and its tile progress. Everything a job writes (the upload, the
result, the two previews) lies in the queue's own temporary folder; the upload is deleted as
soon as the job ends, results are deleted when more than ``keep_results`` jobs have finished
(oldest first) and the whole folder when the server stops.

Nothing a client sends becomes a path: files are named by the job's random id and the
suffix, which must be one of the formats amsnet reads and writes.
"""

from __future__ import annotations

import logging
import queue
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from amsnet.errors import AmsnetError, ConfigError, DataError

log = logging.getLogger(__name__)

UPLOAD_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
"""What the page accepts; the result is written in the same format (16-bit kept)."""

JobState = str  # "queued", "running", "done" or "failed"


@dataclass(frozen=True)
class ServeLimits:
    """What the server accepts.

    Attributes:
        max_upload_bytes: largest upload (a 16-bit 24-megapixel TIFF is about 150 MB).
        max_pixels: largest image, ``H * W``, checked from the header before decoding.
        max_queued: jobs waiting at once; more are refused (HTTP 503) until some finish.
        keep_results: finished jobs whose results stay downloadable.
    """

    max_upload_bytes: int = 256 << 20
    max_pixels: int = 60_000_000
    max_queued: int = 16
    keep_results: int = 32

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "max_queued", "keep_results"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class ModelChoice:
    """One model the page offers.

    Attributes:
        name: shown on the page and sent back with each upload.
        weights: a shipped model's name or a weights file (:func:`amsnet.zoo.resolve_weights`).
        variants: what it runs: ``("B", "E")`` for a model with masks (E adds R3), ``("B",)``
            for a one-pass model; an exported ONNX graph holds one variant.
        summary: one line for the page.
    """

    name: str
    weights: str
    variants: tuple[str, ...]
    summary: str = ""


class UploadRefusedError(AmsnetError):
    """An upload the server refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Job:
    """One photo's way through the queue (what the page polls)."""

    id: str
    name: str
    suffix: str
    model: str
    variant: str
    folder: Path
    ensemble: int = 1
    strength: float = 1.0
    state: JobState = "queued"
    tiles_done: int = 0
    tiles_total: int = 0
    width: int = 0
    height: int = 0
    seconds: float = 0.0
    error: str | None = None
    report: dict[str, float] | None = None
    summary: str | None = None
    submitted: float = field(default_factory=time.monotonic)

    @property
    def upload(self) -> Path:
        return self.folder / f"{self.id}-input{self.suffix}"

    @property
    def result(self) -> Path:
        return self.folder / f"{self.id}-result{self.suffix}"

    def preview(self, which: str) -> Path:
        """The 8-bit PNG the page shows for ``which`` (``noisy`` or ``denoised``)."""
        return self.folder / f"{self.id}-preview-{which}.png"

    @property
    def download_name(self) -> str:
        """``<input stem>-denoised<suffix>``, with only safe characters."""
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(self.name).stem).strip("._") or "photo"
        return f"{stem[:80]}-denoised{self.suffix}"

    def as_json(self, position: int | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "model": self.model,
            "variant": self.variant,
            "ensemble": self.ensemble,
            "strength": self.strength,
            "state": self.state,
            "position": position,
            "tiles_done": self.tiles_done,
            "tiles_total": self.tiles_total,
            "width": self.width,
            "height": self.height,
            "seconds": round(self.seconds, 2),
            "error": self.error,
            "report": self.report,
            "summary": self.summary,
        }


class JobQueue:
    """Jobs in, one at a time through the model, results out.

    Args:
        models: what the page offers; the first is the default.
        limits: what uploads may be.
        device, precision: as for :func:`amsnet.inference.load_for_inference`.
        seed: keys the masks of every job (the same photo gives the same result as
            ``amsnet denoise --seed``).
        folder: where everything is written (default: a new temporary folder, removed by
            :meth:`close`).
    """

    def __init__(
        self,
        models: list[ModelChoice],
        *,
        limits: ServeLimits | None = None,
        device: str = "auto",
        precision: str = "auto",
        seed: int = 0,
        folder: Path | None = None,
    ) -> None:
        if not models:
            raise ConfigError("the server needs at least one model")
        self.models = {model.name: model for model in models}
        self.default_model = models[0].name
        self.limits = limits or ServeLimits()
        self.device = device
        self.precision = precision
        self.seed = seed
        self._own_folder = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="amsnet-serve-")) if folder is None else folder
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._waiting: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._loaded: dict[str, Any] = {}
        self._worker = threading.Thread(target=self._work, name="amsnet-serve", daemon=True)
        self._worker.start()

    # ----- the client's side

    def check_request(
        self,
        name: str,
        model: str,
        variant: str,
        size: int | None,
        ensemble: int | str = 1,
        strength: float | str = 1.0,
    ) -> str:
        """Refuse a bad upload before its bytes are read; returns its suffix.

        Raises:
            UploadRefusedError: unknown format, model, variant, ensemble size or strength, too
                large, or the queue is full.
        """
        suffix = Path(name).suffix.lower()
        if suffix not in UPLOAD_SUFFIXES:
            raise UploadRefusedError(
                f"{name!r} is not a photo format amsnet reads; use one of "
                f"{', '.join(UPLOAD_SUFFIXES)}",
                415,
            )
        choice = self.models.get(model)
        if choice is None:
            raise UploadRefusedError(f"unknown model {model!r}; offered: {', '.join(self.models)}")
        if variant not in ("B", "E"):
            raise UploadRefusedError(f"variant must be B or E, got {variant!r}")
        if variant not in choice.variants:
            why = "needs a model with masks" if variant == "E" else "is not in this graph"
            raise UploadRefusedError(
                f"variant {variant} {why}, and {model} runs {'/'.join(choice.variants)} only; "
                f"choose {choice.variants[0]}"
            )
        from amsnet.ops.dihedral import check_transform_count
        from amsnet.ops.strength import check_strength

        try:
            check_transform_count(ensemble)
            check_strength(strength)
        except ConfigError as error:
            raise UploadRefusedError(str(error)) from None
        if size is not None and size > self.limits.max_upload_bytes:
            raise UploadRefusedError(self._too_large(size), 413)
        if self._waiting.qsize() >= self.limits.max_queued:
            raise UploadRefusedError(
                f"{self.limits.max_queued} photos are already waiting; try again when some "
                "are done",
                503,
            )
        return suffix

    def new_job(
        self,
        name: str,
        model: str,
        variant: str,
        size: int | None,
        ensemble: int | str = 1,
        strength: float | str = 1.0,
    ) -> Job:
        """A job whose upload (``size`` bytes, if known) the caller writes to
        :attr:`Job.upload`, then :meth:`enqueue`s; ``ensemble`` and ``strength`` as for
        :func:`amsnet.inference.denoise_image`.

        Raises:
            UploadRefusedError: see :meth:`check_request`.
        """
        suffix = self.check_request(name, model, variant, size, ensemble, strength)
        job_id, shown = secrets.token_hex(8), Path(name).name[:200]
        # check_request let only a whole number 1..8 and a number 0..1 through.
        return Job(
            job_id,
            shown,
            suffix,
            model,
            variant,
            self.folder,
            int(ensemble),
            float(strength),
        )

    def too_large(self, size: int) -> bool:
        return size > self.limits.max_upload_bytes

    def _too_large(self, size: int) -> str:
        limit = self.limits.max_upload_bytes / 2**20
        return f"the file has {size / 2**20:.1f} MiB, more than this server's {limit:.0f} MiB"

    def reject_oversize(self, job: Job, size: int) -> UploadRefusedError:
        job.upload.unlink(missing_ok=True)
        return UploadRefusedError(self._too_large(size), 413)

    def enqueue(self, job: Job) -> None:
        """Check the uploaded file's header (format, size) and queue it.

        Raises:
            UploadRefusedError: not a readable image, or more pixels than allowed (the upload is
                deleted).
        """
        from amsnet.data.io import image_header

        try:
            header = image_header(job.upload)
        except DataError as error:
            job.upload.unlink(missing_ok=True)
            message = str(error).replace(str(job.upload), repr(job.name))
            raise UploadRefusedError(message, 415) from None
        pixels = header.height * header.width
        if pixels > self.limits.max_pixels:
            job.upload.unlink(missing_ok=True)
            raise UploadRefusedError(
                f"{job.name!r} has {pixels / 1e6:.1f} megapixels, more than this server's "
                f"{self.limits.max_pixels / 1e6:.0f}; use `amsnet denoise` for it",
                413,
            )
        job.width, job.height = header.width, header.height
        with self._lock:
            self._jobs[job.id] = job
        self._waiting.put(job.id)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def status(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            position = None
            if job.state == "queued":
                queued = [j for j in self._jobs.values() if j.state == "queued"]
                position = next(i for i, j in enumerate(queued, start=1) if j is job)
            return job.as_json(position)

    def close(self) -> None:
        """Stop the worker after the current job and delete the queue's folder (if its own)."""
        self._waiting.put(None)
        self._worker.join(timeout=60)
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    # ----- the worker's side

    def _work(self) -> None:
        while True:
            job_id = self._waiting.get()
            if job_id is None:
                return
            job = self.get(job_id)
            if job is None:
                continue
            job.state = "running"
            start = time.perf_counter()
            try:
                self._denoise(job)
                job.state = "done"
            except Exception as error:  # a failed photo must not stop the server
                if not isinstance(error, (AmsnetError, OSError)):
                    log.exception("job %s (%s) failed", job.id, job.name)
                job.error = str(error).replace(str(job.upload), repr(job.name))
                job.state = "failed"
                job.result.unlink(missing_ok=True)
            finally:
                job.seconds = time.perf_counter() - start
                job.upload.unlink(missing_ok=True)
                self._forget_old()

    def preload(self) -> None:
        """Load the default model now, so that a broken file or device fails at start, not
        on the first photo.

        Raises:
            CheckpointError, ConfigError: as :func:`amsnet.inference.load_for_inference`.
        """
        self._denoiser(self.default_model, self.models[self.default_model].variants[0], 1)

    def _denoiser(self, model: str, variant: str, ensemble: int):
        """The model's file denoiser for ``variant`` and ``ensemble`` (the model is loaded once
        and shared by all its settings)."""
        from amsnet.denoise_files import FileDenoiser
        from amsnet.inference import load_for_inference

        key = f"{model}/{variant}/{ensemble}"
        if key not in self._loaded:
            method = next(
                (d.method for k, d in self._loaded.items() if k.startswith(f"{model}/")), None
            ) or load_for_inference(self.models[model].weights, self.device, self.precision)
            self._loaded[key] = FileDenoiser(
                method, refine=variant == "E", seed=self.seed, ensemble=ensemble
            )
        return self._loaded[key]

    def _denoise(self, job: Job) -> None:
        denoiser = self._denoiser(job.model, job.variant, job.ensemble)
        # The strength only blends the output with the input, so one cached denoiser serves
        # every value (no cache entry per value a client sends); the single worker thread
        # runs one job at a time.
        denoiser.strength = job.strength

        def progress(done: int, total: int) -> None:
            job.tiles_done, job.tiles_total = done, total

        result = denoiser.denoise_file(job.upload, job.result, progress=progress, keep_pixels=True)
        assert result.noisy is not None and result.denoised is not None
        write_preview(result.noisy, job.preview("noisy"))
        write_preview(result.denoised, job.preview("denoised"))
        try:
            report = quality_report(result.noisy, result.denoised, denoiser.method)
            job.report, job.summary = report.as_row(), report.summary()
        except Exception as error:  # the result is good without its report: deliver it
            log.exception("no quality report for job %s (%s)", job.id, job.name)
            job.summary = f"no quality report ({error})"

    def _forget_old(self) -> None:
        with self._lock:
            finished = [j for j in self._jobs.values() if j.state in ("done", "failed")]
            for job in finished[: max(0, len(finished) - self.limits.keep_results)]:
                for path in (job.result, job.preview("noisy"), job.preview("denoised")):
                    path.unlink(missing_ok=True)
                del self._jobs[job.id]


def write_preview(values: np.ndarray, path: Path) -> None:
    """An 8-bit RGB PNG of integer pixels ``(H, W, C)`` (uint8 or uint16, C = 1 or 3) for the
    browser, which shows neither 16-bit nor TIFF; fast compression (a local page)."""
    from PIL import Image as PILImage

    from amsnet.data.images import sixteen_to_eight_bits

    if values.dtype == np.uint16:
        values = sixteen_to_eight_bits(values)
    if values.shape[2] == 1:
        values = np.repeat(values, 3, axis=2)
    PILImage.fromarray(np.ascontiguousarray(values[:, :, :3])).save(path, compress_level=1)


def quality_report(noisy: np.ndarray, denoised: np.ndarray, method: Any):
    """The no-reference report (:mod:`amsnet.no_reference`) of one result."""
    from amsnet.no_reference import assess, pd_factor_for

    return assess(noisy, denoised, pd_factor=pd_factor_for(method))


def offered_models(model: str | None = None, weights: str | None = None) -> list[ModelChoice]:
    """What the page offers: a user's weights file first (when given), then the shipped
    models with ``model`` (default: :data:`amsnet.zoo.DEFAULT_MODEL`) first.

    Raises:
        CheckpointError: ``weights`` is not an amsnet weights file, or ``model`` is unknown.
    """
    from amsnet.checkpoint import read_header
    from amsnet.zoo import DEFAULT_MODEL, list_models, model_path

    choices = []
    if weights is not None and Path(weights).suffix.lower() == ".onnx":
        from amsnet.onnx_runtime import OnnxModel

        graph = OnnxModel(weights, device="cpu")  # reads and checks the file's metadata
        kind = f"ONNX graph of a {graph.settings.name} model, variant {graph.variant}"
        choices.append(ModelChoice(Path(weights).name, str(weights), (graph.variant,), kind))
    elif weights is not None:
        kind = read_header(weights)["config"]["method"]["name"]
        variants = ("B", "E") if kind in ("amsnet", "apbsn") else ("B",)
        choices.append(ModelChoice(Path(weights).name, str(weights), variants, kind))
    first = model or DEFAULT_MODEL
    model_path(first)  # an unknown name lists the shipped ones; a damaged file is refused
    shipped = sorted(list_models(), key=lambda m: m.name != first)
    choices += [
        ModelChoice(m.name, m.name, ("B",) if m.role == "student" else ("B", "E"), m.summary)
        for m in shipped
    ]
    return choices
