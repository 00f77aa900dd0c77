"""``amsnet denoise``: files, folders and globs in, denoised files out (never in place)."""

from __future__ import annotations

import argparse
import glob
import logging
import os
import sys
import time
from pathlib import Path

from amsnet.cli.options import add_precision_argument

log = logging.getLogger(__name__)

QUALITY_REPORT = "quality_report.csv"
"""What ``--report`` writes into the output folder."""
SUFFIX_BY_FORMAT = {"png": ".png", "tif": ".tif", "jpg": ".jpg", "webp": ".webp", "bmp": ".bmp"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "denoise",
        help="denoise image files, folders or globs (the default shipped model unless told)",
        description=(
            "Denoise images into --output, keeping their relative paths, format and bit depth. "
            "Large images are processed in overlapping, blended tiles within a memory budget. "
            "The model is the default shipped one (amsnet models), --model NAME another, "
            "--weights FILE your own, or --zero-shot a small AMSNet fitted from scratch on the "
            "inputs themselves. --adapt STEPS first fine-tunes the model on the inputs "
            "(self-supervised: for a camera the shipped models never saw)."
        ),
    )
    parser.add_argument("inputs", nargs="+", help="image files, folders (recursive) or globs")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="a shipped model (default: the default in amsnet models)")
    source.add_argument("--weights", type=Path, help="your own .safetensors weights")
    source.add_argument(
        "--zero-shot", action="store_true", help="fit a small AMSNet on the inputs from scratch"
    )
    parser.add_argument(
        "--variant",
        choices=["B", "P", "E"],
        default="B",
        help="E = with R3 refinement (models with masks only)",
    )
    parser.add_argument(
        "--adapt",
        type=int,
        default=0,
        metavar="STEPS",
        help="fine-tune the model self-supervised on the inputs for STEPS steps first",
    )
    parser.add_argument(
        "--adapt-teacher",
        type=int,
        default=0,
        metavar="STEPS",
        help="with --adapt on a distilled student: adapt its teacher for STEPS steps before "
        "re-distilling (default 0: on CC15 it did not help)",
    )
    parser.add_argument(
        "--ensemble",
        type=int,
        default=1,
        metavar="N",
        help="average over N flips and rotations of each image (1-8; N times the time, a "
        "little more quality: +0.05 dB for the default model on CC15 with 8)",
    )
    parser.add_argument(
        "--strength",
        type=float,
        default=1.0,
        metavar="S",
        help="keep this share of the noise removal, 0-1 (default 1: all; lower keeps more "
        "detail, and noise, where the model smooths too much)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument(
        "--runtime",
        choices=["torch", "onnx"],
        help="torch (default), or onnx: onnxruntime runs an .onnx --weights file from amsnet "
        "export, or exports --model/--weights to a temporary one first (docs/onnx.md)",
    )
    add_precision_argument(parser)
    parser.add_argument("--seed", type=int, default=0, help="seeds the masks (and the fit)")
    parser.add_argument("--tile", default="auto", help="tile size in pixels, auto, or 0 (none)")
    parser.add_argument("--overlap", type=int, default=64, help="pixels shared by tiles")
    parser.add_argument(
        "--max-memory",
        type=float,
        help="GiB a tile may use (default: 0.625 on CPU, 60%% of free GPU)",
    )
    parser.add_argument(
        "--format", choices=sorted(SUFFIX_BY_FORMAT), help="output format (default: the input's)"
    )
    parser.add_argument("--bit-depth", type=int, choices=[8, 16], help="default: the input's")
    parser.add_argument("--quality", type=int, default=95, help="JPEG / WebP quality (1-100)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--fit-steps", type=int, default=2000, help="steps of the --zero-shot fit")
    parser.add_argument(
        "--save-weights", type=Path, help="keep the fitted or adapted model in this file"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--report",
        action="store_true",
        help=f"no-reference quality numbers per output in -o/{QUALITY_REPORT} and a summary "
        "line per file (docs/quality_report.md)",
    )
    parser.set_defaults(run=run)


def check_arguments(args: argparse.Namespace) -> None:
    """Every option checked before any work starts.

    Raises:
        ConfigError: naming the flag and the accepted values.
    """
    from amsnet.errors import ConfigError

    if args.fit_steps < 1:
        raise ConfigError(f"--fit-steps must be at least 1, got {args.fit_steps}")
    if args.adapt < 0:
        raise ConfigError(f"--adapt must be 0 (off) or a number of steps, got {args.adapt}")
    if args.adapt_teacher < 0:
        raise ConfigError(
            f"--adapt-teacher must be 0 (off) or a number of steps, got {args.adapt_teacher}"
        )
    if args.adapt_teacher and not args.adapt:
        raise ConfigError("--adapt-teacher adapts a student's teacher during --adapt: add --adapt")
    if args.adapt and args.zero_shot:
        raise ConfigError("--adapt fine-tunes a trained model; --zero-shot trains from scratch")
    from amsnet.ops.dihedral import check_transform_count

    check_transform_count(args.ensemble, "--ensemble")
    from amsnet.ops.strength import check_strength

    check_strength(args.strength, "--strength")
    if not 1 <= args.quality <= 100:
        raise ConfigError(f"--quality must lie in 1..100, got {args.quality}")
    if args.overlap < 0:
        raise ConfigError(f"--overlap must be 0 or more pixels, got {args.overlap}")
    if args.max_memory is not None and not args.max_memory > 0:
        raise ConfigError(f"--max-memory must be a positive number of GiB, got {args.max_memory}")
    if args.save_weights is not None and not (args.zero_shot or args.adapt):
        raise ConfigError(
            "--save-weights keeps a model fitted here: use it with --zero-shot or --adapt"
        )
    onnx_file = args.weights is not None and args.weights.suffix.lower() == ".onnx"
    if args.runtime is None:
        args.runtime = "onnx" if onnx_file else "torch"
    if args.runtime == "torch" and onnx_file:
        raise ConfigError(f"--weights {args.weights} is an ONNX file: use --runtime onnx")
    if args.runtime == "onnx" and (args.zero_shot or args.adapt):
        raise ConfigError(
            "--runtime onnx runs a fixed exported graph; --zero-shot and --adapt train in "
            "PyTorch: drop --runtime onnx (or export the saved weights afterwards)"
        )
    if args.runtime == "onnx" and args.precision not in ("auto", "fp32"):
        raise ConfigError(f"--runtime onnx runs in float32; drop --precision {args.precision}")


UNREAD_SUFFIXES = (".gif", ".heic", ".heif", ".avif", ".jxl", ".dng", ".cr2", ".cr3", ".nef")
UNREAD_SUFFIXES += (".arw", ".orf", ".rw2", ".raf", ".pef", ".srw")
"""Image files amsnet does not read; a folder's are named as left out, never silently."""


def collect_inputs(
    inputs: list[str],
    exclude: Path | None = None,
    left_out: list[tuple[Path, str]] | None = None,
) -> list[tuple[Path, Path]]:
    """``(file, relative output path)`` for every image named by files, folders and globs.

    A folder keeps the paths below it; a glob keeps the paths below its first wildcard's
    folder; a file keeps its name. Unreadable names are reported later, file by file.

    Args:
        inputs: the command line's files, folders and globs.
        exclude: a folder whose files are never inputs (the output folder: a second run into
            ``photos/out`` must not denoise the first run's results).
        left_out: receives ``(file, why)`` for the files of folders and globs that were not
            taken (inside ``exclude``, or in a format amsnet does not read,
            :data:`UNREAD_SUFFIXES`).
    """
    from amsnet.data.folders import list_images
    from amsnet.data.io import is_image_file
    from amsnet.errors import DataError

    skipped = left_out if left_out is not None else []
    barrier = exclude.resolve() if exclude is not None else None

    def kept(files: list[Path]) -> list[Path]:
        if barrier is None:
            return files
        inside = [f for f in files if f.resolve().is_relative_to(barrier)]
        skipped.extend((f, "inside the output folder") for f in inside)
        return [f for f in files if f not in inside]

    def unread(candidates: list[Path]) -> None:
        skipped.extend(
            (p, "a format amsnet does not read; convert it to PNG or TIFF")
            for p in candidates
            if p.is_file() and p.suffix.lower() in UNREAD_SUFFIXES
        )

    found: list[tuple[Path, Path]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += [(f, f.relative_to(path)) for f in kept(list_images(path))]
            visible = [
                p
                for p in sorted(path.rglob("*"))
                if not any(part.startswith(".") for part in p.relative_to(path).parts)
            ]
            unread(visible)
        elif path.is_file():
            found.append((path, Path(path.name)))
        elif glob.has_magic(item):
            base = Path(item.split("*")[0].split("?")[0].split("[")[0])
            base = base if base.is_dir() or str(base).endswith(os.sep) else base.parent
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True))
            files = kept([p for p in matches if p.is_file() and is_image_file(p)])
            unread(matches)
            if not files:
                raise DataError(f"no image matches {item!r}")
            found += [(f, f.relative_to(base)) for f in files]
        else:
            raise DataError(f"{item} does not exist; give image files, folders or globs")
    return found


def plan_outputs(
    files: list[tuple[Path, Path]], output: Path, output_format: str | None
) -> list[tuple[Path, Path]]:
    """``(input, output file)`` for every input, refusing two inputs that map to one output.

    Raises:
        DataError: the list of colliding inputs (before any work), so that no result is lost.
    """
    from amsnet.errors import DataError

    planned: list[tuple[Path, Path]] = []
    by_target: dict[Path, tuple[Path, list[Path]]] = {}  # resolved -> (as named, sources)
    seen: set[Path] = set()
    for source, relative in files:
        if source.resolve() in seen:  # the same file named twice (a folder and a glob)
            continue
        seen.add(source.resolve())
        target = output / relative
        if output_format:
            target = target.with_suffix(SUFFIX_BY_FORMAT[output_format])
        by_target.setdefault(target.resolve(), (target, []))[1].append(source)
        planned.append((source, target))
    clashes = [(t, s) for t, s in by_target.values() if len(s) > 1]
    if clashes:
        shown = "; ".join(f"{', '.join(map(str, s))} -> {t}" for t, s in clashes[:5])
        more = f" and {len(clashes) - 5} more" if len(clashes) > 5 else ""
        raise DataError(
            f"{sum(len(s) for _, s in clashes)} inputs would be written to the same output "
            f"file ({shown}{more}); rename them, or denoise them into separate -o folders"
        )
    return planned


def check_formats(planned: list[tuple[Path, Path]], bit_depth: int | None) -> None:
    """Every output format able to hold what it will be given, checked from the headers.

    Raises:
        ConfigError: inputs with alpha bound for JPEG, or ``--bit-depth 16`` for a format
            of 8 bits (all such files are listed).
    """
    from amsnet.data.io import EIGHT_BIT_ONLY, format_for_suffix, image_header, WITHOUT_ALPHA
    from amsnet.errors import AmsnetError, ConfigError

    if bit_depth == 16:
        narrow = [t for _, t in planned if format_for_suffix(t) in EIGHT_BIT_ONLY]
        if narrow:
            raise ConfigError(
                f"--bit-depth 16 cannot be written to {_listed(narrow)} (8 bits per sample "
                "only); add --format png or --format tif, or drop --bit-depth"
            )
    lossy_alpha = []
    for source, target in planned:
        if format_for_suffix(target) not in WITHOUT_ALPHA:
            continue
        try:
            if image_header(source).has_alpha:
                lossy_alpha.append(source)
        except AmsnetError:
            pass  # an unreadable file is reported in its turn
    if lossy_alpha:
        verb = "has" if len(lossy_alpha) == 1 else "have"
        raise ConfigError(
            f"{_listed(lossy_alpha)} {verb} an alpha channel that JPEG and BMP cannot hold; "
            "add --format png (or tif, webp) to keep it"
        )


def _listed(paths: list[Path]) -> str:
    shown = ", ".join(map(str, paths[:5]))
    return shown + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


def run(args: argparse.Namespace) -> int:
    import torch

    from amsnet.api import check_refinable
    from amsnet.atomic import check_new_output, check_output_folder
    from amsnet.checkpoint import save_pretrained
    from amsnet.denoise_files import FileDenoiser
    from amsnet.errors import AmsnetError, DataError
    from amsnet.precision import backbone_dtype, precision_name

    check_arguments(args)
    # The folder itself; each result is checked in its turn (existing ones are skipped).
    check_output_folder(args.output, [], overwrite=args.overwrite, flag="-o")
    left_out: list[tuple[Path, str]] = []
    files = collect_inputs(args.inputs, exclude=args.output, left_out=left_out)
    for path, why in left_out:
        print(f"left out: {path} ({why})", file=sys.stderr)
    if not files:
        raise DataError("no images found in the inputs")
    inputs = {f.resolve() for f, _ in files}
    planned = plan_outputs(files, args.output, args.format)
    check_formats(planned, args.bit_depth)
    tile = _tile_setting(args.tile, args.overlap)
    budget = int(args.max_memory * 2**30) if args.max_memory else None
    refine = args.variant == "E"
    bars = not args.quiet and sys.stderr.isatty() and os.environ.get("CI") != "true"
    if args.save_weights is not None:
        check_new_output(
            args.save_weights, overwrite=args.overwrite, inputs=inputs, flag="--save-weights"
        )
    if args.report:
        check_new_output(
            args.output / QUALITY_REPORT, overwrite=args.overwrite, inputs=inputs, flag="--report"
        )
    quality_rows: list[dict[str, object]] = []

    if args.zero_shot:
        method = _zero_shot(files, args, bars)
        source = "amsnet denoise --zero-shot"
    else:
        from amsnet.zoo import DEFAULT_MODEL, model_path

        chosen = args.weights if args.weights is not None else (args.model or DEFAULT_MODEL)
        if args.weights is None:
            model_path(str(chosen))  # an unknown name lists the shipped models
        method = _loaded_model(chosen, args, refine)
        print(f"model: {chosen} (backbone in {precision_name(backbone_dtype(method))})")
        teacher_steps = f" --adapt-teacher {args.adapt_teacher}" if args.adapt_teacher else ""
        source = f"amsnet denoise --adapt {args.adapt}{teacher_steps} ({chosen})"
    if refine:
        check_refinable(method)
    if args.adapt:
        method = _adapted(method, files, args, bars)
    if args.save_weights:
        save_pretrained(method, args.save_weights, source=source)
        print(f"saved the fitted model to {args.save_weights}")
    files_denoiser = FileDenoiser(
        method,
        refine=refine,
        seed=args.seed,
        tile=tile,
        overlap=args.overlap,
        memory_budget=budget,
        bit_depth=args.bit_depth,
        quality=args.quality,
        overwrite=args.overwrite,
        ensemble=args.ensemble,
        strength=args.strength,
    )
    failed: list[tuple[Path, str]] = []
    done = skipped = 0
    start = time.perf_counter()
    for number, (source, target) in enumerate(planned, start=1):
        label = f"[{number}/{len(planned)}] {source}"
        if target.resolve() in inputs:
            failed.append((source, f"the output {target} would overwrite an input; choose -o"))
            continue
        if target.exists() and not args.overwrite:
            print(f"{label}: {target} exists, skipped (--overwrite replaces it)")
            skipped += 1
            continue
        try:
            result = files_denoiser.denoise_file(
                source, target, progress=_tile_bar(label, bars), keep_pixels=args.report
            )
            tiles = "whole" if result.tile is None else f"{result.tile} px tiles"
            print(f"{label} -> {target} ({result.width}x{result.height}, {tiles})")
            done += 1
            if args.report:
                quality_rows += _quality_row(result, method)
        except (AmsnetError, OSError) as error:
            failed.append((source, str(error)))
            print(f"{label}: FAILED: {error}", file=sys.stderr)
        except torch.cuda.OutOfMemoryError as error:
            failed.append((source, f"out of GPU memory even with small tiles ({error})"))
    if args.report:
        _write_quality_report(args.output / QUALITY_REPORT, quality_rows)
    seconds = time.perf_counter() - start
    left = f", {len(left_out)} left out" if left_out else ""
    print(f"\n{done} denoised, {skipped} skipped, {len(failed)} failed{left} in {seconds:.1f} s")
    for source, reason in failed:
        print(f"  failed: {source}: {reason}", file=sys.stderr)
    return 1 if failed else 0


def _quality_row(result, method) -> list[dict[str, object]]:
    """The no-reference report of one denoised file as a CSV row (none for an image too small
    to measure, said so), and its summary line printed."""
    from amsnet.errors import AmsnetError
    from amsnet.no_reference import assess, pd_factor_for

    try:
        report = assess(result.noisy, result.denoised, pd_factor=pd_factor_for(method))
    except AmsnetError as error:
        print(f"  quality: not measured ({error})")
        return []
    print(f"  quality: {report.summary()}")
    row = {name: round(value, 4) for name, value in report.as_row().items()}
    return [{"source": str(result.source), "output": str(result.target), **row}]


def _write_quality_report(path: Path, rows: list[dict[str, object]]) -> None:
    """``rows`` as CSV at ``path``, atomically (the header even when no file was denoised)."""
    import csv

    from amsnet.atomic import atomic_path
    from amsnet.no_reference import COLUMNS

    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["source", "output", *COLUMNS])
        writer.writeheader()
        writer.writerows(rows)
    print(f"quality report: {path} ({len(rows)} file(s); docs/quality_report.md explains it)")


def _tile_setting(value: str, overlap: int) -> int | str | None:
    from amsnet.errors import ConfigError

    if value == "auto":
        return "auto"
    try:
        size = int(value)
    except ValueError:
        raise ConfigError(f"--tile must be a number of pixels, auto or 0, got {value!r}") from None
    if size < 0 or (size and size <= overlap):
        raise ConfigError(f"--tile {size} must be 0 (no tiles) or larger than --overlap {overlap}")
    return size or None


def _tile_bar(label: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    bar: dict[str, tqdm] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc=label, unit="tile", leave=False)
        bar["bar"].update(done - bar["bar"].n)
        if done == total:
            bar["bar"].close()

    return update


def _readable_images(files: list[tuple[Path, Path]], purpose: str) -> list:
    """The pixels of every input that can be read (the others are reported per file later)."""
    from amsnet.data.io import read_image
    from amsnet.errors import AmsnetError, DataError

    images = []
    for source, _ in files:
        try:
            images.append(read_image(source).pixels)
        except AmsnetError as error:
            log.warning("not used for %s: %s", purpose, error)
    if not images:
        raise DataError(f"none of the inputs could be read, so nothing can be used for {purpose}")
    return images


def _step_bar(total: int, label: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    bar = tqdm(total=total, desc=label, unit="step")

    def progress(step: int, loss: float) -> None:
        bar.update(step - bar.n)
        bar.set_postfix(loss=f"{loss:.4f}")

    return progress


def _loaded_model(chosen, args: argparse.Namespace, refine: bool):
    """The model to denoise with: PyTorch's, or with ``--runtime onnx`` an ONNX graph (the
    given ``.onnx`` file, or ``chosen`` exported to a temporary one), checked for the asked
    variant and seed before any file is read."""
    from amsnet.inference import load_for_inference
    from amsnet.onnx_runtime import OnnxModel

    if args.runtime != "onnx" or str(chosen).lower().endswith(".onnx"):
        method = load_for_inference(chosen, args.device, args.precision)
    else:
        variant = "E" if refine else "B"
        print(f"exporting {chosen} to ONNX (variant {variant}, seed {args.seed})")
        method = OnnxModel.from_weights(chosen, variant=variant, seed=args.seed, device=args.device)
    if isinstance(method, OnnxModel):
        method.check_variant(refine)
        method.check_seed(args.seed)
    return method


def _zero_shot(files: list[tuple[Path, Path]], args: argparse.Namespace, bars: bool):
    """Fit a small AMSNet on all readable inputs (self-supervised) and return it."""
    from amsnet.api import fit

    images = _readable_images(files, "fitting")
    print(f"zero-shot: fitting AMSNet on {len(images)} image(s) for {args.fit_steps} steps")
    return fit(
        images,
        steps=args.fit_steps,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        progress=_step_bar(args.fit_steps, "fit", bars),
    )


def _adapted(method, files: list[tuple[Path, Path]], args: argparse.Namespace, bars: bool):
    """The model fine-tuned self-supervised on all readable inputs."""
    from amsnet.api import adapt

    images = _readable_images(files, "adaptation")
    print(f"adapting the model on {len(images)} image(s) for {args.adapt} steps")
    return adapt(
        method,
        images,
        steps=args.adapt,
        seed=args.seed,
        device=args.device,
        teacher_steps=args.adapt_teacher,
        progress=_step_bar(args.adapt, "adapt", bars),
    )
