"""``amsnet finetune``: stage P, AMSNet fine-tuned with L_t from stage-B weights."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from amsnet.cli.train import add_common_arguments, run_training

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "finetune",
        help="fine-tune AMSNet weights with L_t (stage P, AMSNet-P)",
        description=(
            "Train CONFIG with train.stage=P (AMSNet's fine-tuning loss L_t) starting from "
            "--init (normally the best.safetensors of a stage-B run). The paper fine-tunes on "
            "320x320 crops with lr 1e-5: use the configs/amsnet_p/ files."
        ),
    )
    add_common_arguments(parser)
    parser.add_argument(
        "--init", type=Path, required=True, help="the stage-B weights (.safetensors) to start from"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from amsnet.config import load_config
    from amsnet.errors import ConfigError

    try:
        stage = load_config(args.config, args.overrides).train.stage
    except ConfigError:
        stage = None  # run_training reports the problem with the file
    if stage == "B":
        log.warning(
            "%s is a stage-%s configuration: fine-tuning keeps its crop size and learning rate "
            "(the paper uses 320x320 crops and lr 1e-5, as configs/amsnet_p/ does)",
            args.config,
            stage,
        )
    overrides = [*args.overrides, "train.stage=P", f"train.init={args.init}"]
    return run_training(args, overrides)
