"""``amsnet train``: run an experiment configuration (stage B, AP-BSN or supervised)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from amsnet.cli.options import add_overrides_argument, add_precision_argument


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments ``train`` and ``finetune`` share."""
    parser.add_argument("config", type=Path, help="experiment YAML file (see configs/)")
    add_overrides_argument(
        parser, example="a setting, e.g. --set train.steps=1000 data.train.root=/data/SIDD"
    )
    parser.add_argument(
        "--out", type=Path, help="run folder (default: experiment.output_dir/experiment.name)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in the run folder (state.pt)"
    )
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: train.device)")
    add_precision_argument(
        parser,
        default=None,
        help="the backbone's: auto, fp32, bf16 or fp16 (default: train.precision)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train",
        help="train a model from an experiment configuration",
        description=(
            "Train as CONFIG says, writing weights (.safetensors with their configuration), "
            "logs, sample images and a resume state into the run folder. Ctrl-C or SIGTERM "
            "saves a checkpoint before exiting; --resume continues exactly. Several GPUs: "
            "torchrun --nproc_per_node N -m amsnet train CONFIG."
        ),
    )
    add_common_arguments(parser)
    parser.set_defaults(run=run)


@contextlib.contextmanager
def _log_above_progress_bar() -> Iterator[None]:
    try:
        from tqdm.contrib.logging import logging_redirect_tqdm
    except ImportError:
        yield
        return
    with logging_redirect_tqdm():
        yield


def run_training(args: argparse.Namespace, overrides: Sequence[str]) -> int:
    """Load the configuration with ``overrides``, train, print where the results are.

    With ``--resume`` the overrides recorded in the run folder come first and the new ones
    after them (a later value wins), so the resume command needs no ``--set`` repeated.
    """
    from amsnet.config import load_config
    from amsnet.runtime import tune_cpu_allocator
    from amsnet.training.run_folder import RunFolder
    from amsnet.training.trainer import Trainer

    if getattr(args, "precision", None):
        overrides = [*overrides, f"train.precision={args.precision}"]
    config = load_config(args.config, overrides)
    if args.resume:
        run_dir = args.out or Path(config.experiment.output_dir) / config.experiment.name
        recorded = RunFolder(run_dir).recorded_overrides()
        if recorded:
            # One entry per key, the newest value: repeated resumes do not pile them up.
            latest = {item.split("=", 1)[0]: item for item in [*recorded, *overrides]}
            overrides = list(latest.values())
            config = load_config(args.config, overrides)
    tune_cpu_allocator()
    main_process = os.environ.get("RANK", "0") == "0"
    if not main_process:
        # Under torchrun only rank 0 reports; the others speak up for warnings and errors.
        logging.getLogger("amsnet").setLevel(logging.WARNING)
    trainer = Trainer(
        config,
        run_dir=args.out,
        resume=args.resume,
        device=args.device,
        quiet=args.quiet,
        overrides=overrides,
    )
    with _log_above_progress_bar():
        result = trainer.fit()
    if not main_process:
        return 128 + int(result.signal) if result.signal is not None else 0
    if result.best_psnr is not None and not math.isnan(result.best_psnr):
        print(f"best validation PSNR {result.best_psnr:.3f} dB at step {result.best_step}")
    for label, path in (("best weights", result.best_path), ("last weights", result.last_path)):
        if path is not None:
            print(f"{label}: {path}")
    if result.interrupted:
        print(
            f"stopped at step {result.step} of {result.total_steps}; continue with: "
            f"amsnet {args.command} {args.config} --out {result.run_dir} --resume"
        )
    if result.signal is not None:
        return 128 + int(result.signal)
    return 0


def run(args: argparse.Namespace) -> int:
    return run_training(args, args.overrides)
