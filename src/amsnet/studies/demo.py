"""The embedded demo: noisy photos with their clean versions, the shipped models against BM3D.

Two sources of photos (``photos``):

* ``cc15``: four of the CC15 photographs (Nam et al., CVPR 2016: real camera noise of Canon
  5D Mark III, Nikon D600 and D800 at ISO 1600-6400, the clean image the mean of 500 shots),
  from ``../shared/data/cc15`` where the project's data is present. The shipped models never
  saw these cameras or scenes: what a user gets on real photos of a new camera.
* ``synthetic``: needs nothing but installed packages: clean colour photographs bundled with
  scikit-image and synthetic camera noise (:mod:`amsnet.data.camera_noise`: unprocessing, Bayer
  mosaic, shot and read noise, demosaicking, processing back, so the noise is spatially
  correlated like a real camera's and the clean image is known exactly). The shipped models
  over-smooth this noise (a known problem, ``docs/models.md``).

``auto`` (the default) takes CC15 when it is there, else the synthetic photos. It runs the
default one-pass student, its AMSNet-P teacher with R3 (P-E), the shipped AP-BSN with R3,
the student adapted to the noisy photos themselves (test-time adaptation: self-supervised, no
clean image), and BM3D with the oracle noise level and with an estimated one, and writes
``results.csv``, ``comparison.png`` and ``report.html``.

The models were trained on real camera noise (PolyU, RNI15), never on these photos or on the
synthetic noise: the rows show what a user gets on a camera the models never saw, before and
after adaptation.
"""

from __future__ import annotations

import csv
import html
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from amsnet.atomic import atomic_path, check_output_folder
from amsnet.data.camera_noise import camera_noise
from amsnet.data.images import from_uint8
from amsnet.data.io import write_image
from amsnet.data.noise import image_seed
from amsnet.errors import ConfigError
from amsnet.metrics import psnr, ssim
from amsnet.no_reference import assess, NoReferenceReport
from amsnet.studies.classical import bm3d_denoise, estimated_sigma, oracle_sigma, require_bm3d
from amsnet.studies.comparison import comparison_sheet

log = logging.getLogger(__name__)

DEMO_IMAGES = ("astronaut", "chelsea", "coffee")
"""The scikit-image photos of the synthetic demo."""
DEMO_CC15 = ("5dmark3_iso3200_1", "d600_iso3200_2", "d800_iso1600_3", "d800_iso6400_1")
"""The CC15 photos of the real-noise demo: each camera, ISO 1600 to 6400 (512x512 each; BM3D
takes about 18 s per photo and noise level, so four keep the demo near five minutes)."""
DEMO_DATA = Path("../shared/data")
"""Where the project's data lies (``cc15/`` in it), relative to the repository root."""
PHOTO_SOURCES = ("auto", "cc15", "synthetic")
DEMO_ADAPT_STEPS = 300
"""Steps of the demo's test-time adaptation of the default student."""
TEACHER_LABEL = "AMSNet-P-E teacher"
STUDENT_LABEL = "AMSNet student (default)"
APBSN_LABEL = "AP-BSN + R3"
DEMO_OUTPUTS = ("results.csv", "comparison.png", "report.html", "images", "weights")
"""What a demo writes into its folder (a second demo there needs ``overwrite``)."""


@dataclass
class DemoRow:
    """One method on one image (``image == "mean"`` for the average over the images)."""

    method: str
    image: str
    psnr: float
    ssim_matlab: float
    ssim_skimage: float
    seconds: float


def demo_images() -> list[tuple[str, torch.Tensor]]:
    """The clean photos bundled with scikit-image, as ``(3, H, W)`` float32 in ``[0, 1]``.

    Raises:
        ConfigError: scikit-image is not installed.
    """
    try:
        from skimage import data
    except ImportError:
        raise ConfigError(
            "the demo uses the photographs bundled with scikit-image; install it with "
            "pip install 'amsnet[demo]'"
        ) from None
    return [(name, from_uint8(getattr(data, name)())) for name in DEMO_IMAGES]


@dataclass
class DemoPhotos:
    """The demo's inputs: ``(3, H, W)`` float32 in ``[0, 1]``, one noisy and one clean per name,
    and a sentence that says where they come from (for the report)."""

    names: list[str]
    noisy: list[torch.Tensor]
    clean: list[torch.Tensor]
    description: str


def demo_photos(
    photos: str = "auto",
    *,
    data: str | Path = DEMO_DATA,
    level: str = "medium",
    seed: int = 0,
    images: list[tuple[str, torch.Tensor]] | None = None,
) -> DemoPhotos:
    """The photos :func:`run_demo` denoises (see the module docstring for ``photos``).

    ``images`` (clean ``(name, (3, H, W))`` photos) replaces scikit-image's for the synthetic
    source and selects it.

    Raises:
        ConfigError: an unknown source, or ``cc15`` asked for and not found under ``data``.
    """
    if photos not in PHOTO_SOURCES:
        raise ConfigError(f"--photos must be one of {', '.join(PHOTO_SOURCES)}, got {photos!r}")
    folder = Path(data) / "cc15"
    if photos == "cc15" and not folder.is_dir():
        raise ConfigError(
            f"--photos cc15: no folder {folder}; give the folder that holds cc15/ with --data, "
            "or use --photos synthetic"
        )
    if images is None and (photos == "cc15" or (photos == "auto" and folder.is_dir())):
        from amsnet.data.pairs import PairedFolder

        # Index by name first: decoding only the demo's four of the fifteen pairs.
        pairs = PairedFolder(folder, rule="cc")
        index = {name.removesuffix("_real"): i for i, name in enumerate(pairs.names)}
        chosen = [(name, pairs[index[name]]) for name in DEMO_CC15 if name in index]
        if not chosen:
            raise ConfigError(f"--data {data}: cc15/ holds none of the demo's photos {DEMO_CC15}")
        return DemoPhotos(
            [name for name, _ in chosen],
            [item["noisy"] for _, item in chosen],
            [item["clean"] for _, item in chosen],
            "Photographs of CC15 (Nam et al., CVPR 2016) with their real camera noise (Canon 5D "
            "Mark III, Nikon D600 and D800, ISO 1600-6400; the clean image is the mean of 500 "
            "shots of the scene)",
        )
    names, noisy, clean = [], [], []
    for name, image in images if images is not None else demo_images():
        noisy_image, clean_image, _ = camera_noise(
            image[None], seed=image_seed(seed, name), iso_like_level=level
        )
        names.append(name)
        noisy.append(noisy_image[0])
        clean.append(clean_image[0])
    return DemoPhotos(
        names,
        noisy,
        clean,
        f"Photographs with synthetic '{level}' camera noise (Bayer mosaic, shot and "
        f"read noise, demosaicking: spatially correlated like a real camera's; seed {seed}). "
        "The shipped models over-smooth this noise (a known problem, see docs/models.md)",
    )


def run_demo(
    output: str | Path,
    *,
    adapt_steps: int = DEMO_ADAPT_STEPS,
    seed: int = 0,
    level: str = "medium",
    device: str = "auto",
    report: Callable[[str], None] = print,
    images: list[tuple[str, torch.Tensor]] | None = None,
    overwrite: bool = False,
    photos: str = "auto",
    data: str | Path = DEMO_DATA,
) -> list[DemoRow]:
    """Run the whole demo and write its files into ``output``.

    Args:
        output: folder for ``results.csv``, ``comparison.png``, ``report.html``, the denoised
            images and the adapted student.
        adapt_steps: steps of the student's adaptation to the noisy photos (0: no such row).
        seed: seeds the noise, the masks and the adaptation.
        level: synthetic camera noise level (``low``, ``medium``, ``high``).
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        report: receives one line per step.
        images: other clean ``(name, (3, H, W))`` photos instead of scikit-image's (synthetic
            noise is added to them).
        overwrite: replace the results of an earlier demo in ``output`` (else refused).
        photos: ``auto``, ``cc15`` or ``synthetic`` (:func:`demo_photos`).
        data: the folder that holds ``cc15/``.

    Raises:
        ConfigError: ``output`` holds an earlier demo's files and ``overwrite`` is false, or
            the photos cannot be had (:func:`demo_photos`).

    Returns:
        One :class:`DemoRow` per method and image, plus the per-method means.
    """
    from amsnet.api import adapt
    from amsnet.checkpoint import save_pretrained
    from amsnet.inference import denoise_image, load_for_inference, plan_tiles
    from amsnet.zoo import DEFAULT_MODEL, SHIPPED

    if adapt_steps < 0:
        raise ConfigError(f"adapt steps must be 0 or more, got {adapt_steps}")
    folder = check_output_folder(output, DEMO_OUTPUTS, overwrite=overwrite, flag="--output")
    start = time.perf_counter()
    torch.manual_seed(seed)
    inputs = demo_photos(photos, data=data, level=level, seed=seed, images=images)
    names, noisy, clean = inputs.names, inputs.noisy, inputs.clean
    report(f"{inputs.description}: {', '.join(names)}")

    outputs: dict[str, list[torch.Tensor]] = {"noisy": noisy}
    seconds: dict[str, float] = {"noisy": 0.0}
    for label, results in _bm3d(noisy, clean, report).items():
        outputs[label], seconds[label] = results

    student = load_for_inference(DEFAULT_MODEL, device)
    teacher_name = student.settings.teacher
    runs: list[tuple[str, torch.nn.Module, bool]] = []
    if "apbsn-dbsnl" in SHIPPED and SHIPPED["apbsn-dbsnl"].path.is_file():
        runs.append((APBSN_LABEL, load_for_inference("apbsn-dbsnl", device), True))
    if teacher_name in SHIPPED:
        runs.append((TEACHER_LABEL, load_for_inference(teacher_name, device), True))
    runs.append((STUDENT_LABEL, student, False))
    if adapt_steps:
        tic = time.perf_counter()
        adapted = adapt(student, noisy, steps=adapt_steps, seed=seed, device=device)
        adapt_seconds = time.perf_counter() - tic
        report(f"student adapted to the noisy photos: {adapt_steps} steps in {adapt_seconds:.0f} s")
        save_pretrained(adapted, folder / "weights" / "adapted-student.safetensors")
        runs.append((f"student + adapt ({adapt_steps} steps)", adapted, False))
    for label, method, refine in runs:
        tic = time.perf_counter()
        results = []
        for x in noisy:
            plan = plan_tiles(method, x.shape[-2], x.shape[-1], refine=refine)
            results.append(denoise_image(method, x, refine=refine, seed=seed, plan=plan))
        outputs[label] = results
        seconds[label] = time.perf_counter() - tic
        if label.startswith("student + adapt"):
            seconds[label] += adapt_seconds
        report(f"{label}: denoised in {seconds[label]:.1f} s")

    rows = _score(outputs, clean, names, seconds)
    quality = _quality(outputs, names)
    _write_outputs(folder, rows, outputs, clean, names, adapt_steps, inputs.description, quality)
    elapsed = time.perf_counter() - start
    report(f"done in {elapsed / 60:.1f} min; wrote {folder / 'report.html'}")
    return rows


def _bm3d(
    noisy: list[torch.Tensor], clean: list[torch.Tensor], report: Callable[[str], None]
) -> dict[str, tuple[list[torch.Tensor], float]]:
    """BM3D with the oracle sigma and with scikit-image's estimate (skipped without bm3d)."""
    try:
        require_bm3d()
    except ConfigError:
        report("BM3D skipped: pip install bm3d (non-commercial licence) to include it")
        return {}
    results: dict[str, tuple[list[torch.Tensor], float]] = {}
    for label in ("BM3D (oracle sigma)", "BM3D (estimated sigma)"):
        tic = time.perf_counter()
        images = []
        for x, y in zip(noisy, clean, strict=True):
            sigma = oracle_sigma(x, y) if label.startswith("BM3D (oracle") else estimated_sigma(x)
            images.append(bm3d_denoise(x, sigma))
            report(f"{label}: sigma {sigma * 255:.2f} (0-255 scale)")
        results[label] = (images, time.perf_counter() - tic)
    return results


def _score(
    outputs: dict[str, list[torch.Tensor]],
    clean: list[torch.Tensor],
    names: list[str],
    seconds: dict[str, float],
) -> list[DemoRow]:
    rows = []
    for label, images in outputs.items():
        per_image = []
        for name, x, y in zip(names, images, clean, strict=True):
            a, b = x[None], y[None]
            per_image.append(
                DemoRow(
                    label,
                    name,
                    float(psnr(a, b)),
                    float(ssim(a, b, convention="matlab")),
                    float(ssim(a, b, convention="skimage")),
                    seconds[label] / len(names),
                )
            )
        rows.extend(per_image)
        rows.append(
            DemoRow(
                label,
                "mean",
                float(np.mean([r.psnr for r in per_image])),
                float(np.mean([r.ssim_matlab for r in per_image])),
                float(np.mean([r.ssim_skimage for r in per_image])),
                seconds[label],
            )
        )
    return rows


def _quality(
    outputs: dict[str, list[torch.Tensor]], names: list[str]
) -> dict[tuple[str, str], NoReferenceReport]:
    """The no-reference report of every output against its noisy input (no clean image)."""
    from amsnet.errors import AmsnetError

    reports = {}
    for label, images in outputs.items():
        for name, noisy, image in zip(names, outputs["noisy"], images, strict=True):
            try:
                reports[(label, name)] = assess(noisy.clamp(0, 1), image.clamp(0, 1))
            except AmsnetError as error:  # a photo too small to measure
                log.info("no quality report for %s / %s: %s", label, name, error)
    return reports


def _write_outputs(
    folder: Path,
    rows: list[DemoRow],
    outputs: dict[str, list[torch.Tensor]],
    clean: list[torch.Tensor],
    names: list[str],
    adapt_steps: int,
    description: str,
    quality: dict[tuple[str, str], NoReferenceReport],
) -> None:
    with atomic_path(folder / "results.csv") as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(DemoRow.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    for label, images in outputs.items():
        slug = label.lower().replace(" ", "_").replace("(", "").replace(")", "").replace("+", "")
        for name, image in zip(names, images, strict=True):
            write_image(folder / "images" / f"{name}_{slug}.png", image.clamp(0, 1), overwrite=True)
    for name, image in zip(names, clean, strict=True):
        write_image(folder / "images" / f"{name}_clean.png", image, overwrite=True)
    _comparison_png(folder / "comparison.png", rows, outputs, clean, names)
    _report_html(folder / "report.html", rows, names, adapt_steps, description, quality)


def _comparison_png(
    path: Path,
    rows: list[DemoRow],
    outputs: dict[str, list[torch.Tensor]],
    clean: list[torch.Tensor],
    names: list[str],
) -> None:
    """Centre crops of the main methods, one row per photo, labelled with PSNR / SSIM."""
    wanted = ("noisy", "BM3D (oracle sigma)", APBSN_LABEL, TEACHER_LABEL, STUDENT_LABEL)
    adapted = [c for c in outputs if c.startswith("student + adapt")]
    columns = [c for c in (*wanted, *adapted) if c in outputs]
    scores = {(r.method, r.image): (r.psnr, r.ssim_matlab) for r in rows}
    comparison_sheet(path, names, {c: outputs[c] for c in columns}, clean, scores)


def _quality_table(rows: list[DemoRow], quality: dict[tuple[str, str], NoReferenceReport]) -> str:
    """HTML rows: PSNR beside the no-reference numbers of each method on each photo."""
    lines = []
    for r in rows:
        report = quality.get((r.method, r.image))
        if report is None:
            continue
        shift = max(abs(report.mean_shift_r), abs(report.mean_shift_g), abs(report.mean_shift_b))
        local = max(report.lowpass_shift_r, report.lowpass_shift_g, report.lowpass_shift_b)
        warnings = ", ".join(report.warnings()) or "none"
        lines.append(
            f"<tr><td>{html.escape(r.method)}</td><td>{html.escape(r.image)}</td>"
            f"<td>{r.psnr:.2f}</td><td>{report.input_noise_sigma:.2f}</td>"
            f"<td>{report.noise_left_sigma:.2f}</td><td>{report.residual_structure_gain:+.2f}</td>"
            f"<td>{report.checkerboard_level:.2f}</td><td>{shift:.2f} / {local:.2f}</td>"
            f"<td>{html.escape(warnings)}</td></tr>"
        )
    return "\n".join(lines)


def _report_html(
    path: Path,
    rows: list[DemoRow],
    names: list[str],
    adapt_steps: int,
    description: str,
    quality: dict[tuple[str, str], NoReferenceReport],
) -> None:
    means = [r for r in rows if r.image == "mean"]
    table = "\n".join(
        f"<tr><td>{html.escape(r.method)}</td><td>{r.psnr:.2f}</td><td>{r.ssim_matlab:.4f}</td>"
        f"<td>{r.ssim_skimage:.4f}</td><td>{r.seconds:.1f}</td></tr>"
        for r in means
    )
    text = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>amsnet demo</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:.3em .6em;text-align:right}}
td:first-child{{text-align:left}}</style></head><body>
<h1>amsnet demo</h1>
<p>{html.escape(description)}: {html.escape(", ".join(names))}, denoised by the models shipped
with amsnet. They were trained self-supervised on real camera noise (PolyU, RNI15; see
docs/models.md), never on these photos or cameras, on synthetic noise or on any clean image.
"student + adapt" is the default student fine-tuned for {adapt_steps} steps on these noisy
photos themselves (self-supervised, test-time adaptation); its seconds include the
adaptation. PSNR and SSIM against the clean images on 8-bit values (SSIM 'matlab': 11x11
Gaussian window; 'skimage': 7x7 uniform window), mean over the photos;
seconds for all photos together.</p>
<table><tr><th>method</th><th>PSNR (dB)</th><th>SSIM matlab</th><th>SSIM skimage</th>
<th>seconds</th></tr>
{table}
</table>
<p><img src="comparison.png" alt="centre crops of every method with PSNR / SSIM"
style="max-width:100%"></p>
<h2>No-reference quality report</h2>
<p>What <code>amsnet denoise --report</code> measures from the noisy input and the output
alone, beside the PSNR that needs the clean image (docs/quality_report.md): the noise
sigma of the input and the noise left in its flattest regions (8-bit levels), the residual's
gain on the output's fine structure (about 0 when only noise was removed; above 0.25:
detail removed), the amplitude of a period-2 checkerboard in the change the method made, and
the largest colour shift of the mean and of 32x32-block means (levels).</p>
<table><tr><th>method</th><th>photo</th><th>PSNR (dB)</th><th>input noise</th>
<th>noise left</th><th>structure gain</th><th>checkerboard</th><th>colour shift</th>
<th>warnings</th></tr>
{_quality_table(rows, quality)}
</table>
<h2>How to read it</h2>
<ul>
<li>The student denoises in one network pass; its teacher (AMSNet-P with R3) needs 18 and is
what the student learned to reproduce.</li>
<li>BM3D "oracle" uses the true noise standard deviation, which a real photo never gives you.
BM3D "estimated" uses scikit-image's <code>estimate_sigma</code>: such estimators barely see
spatially correlated noise, so BM3D with it changes little.</li>
</ul>
<script>
// Self-check for browsers and tests: does every image of this report load?
window.addEventListener("load", () => {{
  const ok = [...document.images].every((image) => image.complete && image.naturalWidth > 0);
  document.body.dataset.images = ok ? "loaded" : "broken";
}});
</script>
</body></html>
"""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
