"""The student's test-time adaptation recipe, one setting at a time, on all of CC15.

    python benchmarks/adapt_recipe.py --student-steps 800 --regions 64 --student-lr 1e-3
    python benchmarks/adapt_recipe.py --teacher-steps 300 --score-teacher

``amsnet.adapt`` re-distils a student on the user's photos: its teacher denoises regions of
them with R3 and the student is fine-tuned on those outputs (docs/models.md, "Test-time
adaptation"). This script runs the same steps with each setting exposed (teacher adaptation
steps and learning rate, regions, their size, the student's steps, learning rate and crop,
targets averaged over flips, targets blended with the student's own output), times each
phase and prints one JSON line: the adapted student's mean PSNR on the 15 CC15 photos it was
adapted on (and, with ``--score-teacher``, the adapted teacher's P-E). The ground truth is
used for scoring only. The table in docs/models.md was made with it.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time

import torch

import amsnet
from amsnet.api import ADAPT_BATCH, ADAPT_CROP, ADAPT_REGION_SIZE
from amsnet.data.benchmarks import load_pairs
from amsnet.inference import denoise_image, load_for_inference, plan_tiles
from amsnet.metrics import psnr
from amsnet.runtime import prepare_for_inference, tune_cpu_allocator
from amsnet.training.distillation import plan_regions
from amsnet.training.fit import fit_images

CC15 = "../shared/data/cc15"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="student-nafnet")
    parser.add_argument("--teacher", default="amsnet-nafnet-p")
    parser.add_argument("--teacher-steps", type=int, default=0)
    parser.add_argument("--student-steps", type=int, default=300)
    parser.add_argument("--student-lr", type=float, default=1e-3)
    parser.add_argument("--student-crop", type=int, default=ADAPT_CROP)
    parser.add_argument("--regions", type=int, default=64)
    parser.add_argument("--region-size", type=int, default=ADAPT_REGION_SIZE)
    parser.add_argument("--target-ensemble", type=int, default=1, help="flips per target")
    parser.add_argument(
        "--refine-passes", type=int, help="the teacher's R3 passes (default: its own)"
    )
    parser.add_argument(
        "--blend-student", type=float, default=0.0, help="share of the student's own output"
    )
    parser.add_argument("--score-teacher", action="store_true")
    args = parser.parse_args(argv)
    tune_cpu_allocator()
    device = torch.device("cpu")
    pairs = list(load_pairs("cc", CC15))
    noisy = [pair.noisy for pair in pairs]
    student = load_for_inference(args.student, "cpu")
    teacher = load_for_inference(args.teacher, "cpu")
    report: dict[str, object] = {"settings": vars(args)}

    start = time.perf_counter()
    if args.teacher_steps:  # the shipped adaptation of a teacher (its own objective)
        teacher = amsnet.adapt(teacher, noisy, steps=args.teacher_steps, device="cpu")
    if args.refine_passes:
        update = {"refine_passes": args.refine_passes}
        teacher.settings = teacher.settings.model_copy(update=update)
    report["teacher_seconds"] = time.perf_counter() - start

    start = time.perf_counter()
    sizes = [(int(x.shape[1]), int(x.shape[2])) for x in noisy]
    inputs, targets = [], []
    for region in plan_regions(sizes, args.regions, args.region_size, 0):
        crop = noisy[region.image][
            :, region.top : region.top + region.side, region.left : region.left + region.side
        ]
        plan = plan_tiles(teacher, region.side, region.side, refine=True, tile=None)
        target = denoise_image(
            teacher, crop, refine=True, seed=region.number, plan=plan, ensemble=args.target_ensemble
        )
        if args.blend_student:
            own = denoise_image(student, crop)
            target = torch.lerp(target, own, args.blend_student)
        inputs.append(crop)
        targets.append(target.clamp(0, 1))
    report["targets_seconds"] = time.perf_counter() - start

    start = time.perf_counter()
    adapted = copy.deepcopy(student)
    fit_images(
        adapted,
        inputs,
        crop=min(args.student_crop, args.region_size),
        batch_size=ADAPT_BATCH,
        steps=args.student_steps,
        lr=args.student_lr,
        targets=targets,
    )
    adapted = prepare_for_inference(adapted, device, precision=None)
    report["student_seconds"] = time.perf_counter() - start
    report["student_psnr"] = _mean_psnr(adapted, pairs, refine=False)
    if args.score_teacher:
        report["teacher_pe_psnr"] = _mean_psnr(teacher, pairs, refine=True)
    print(json.dumps(report), flush=True)
    return 0


def _mean_psnr(method, pairs, *, refine: bool) -> float:
    scores = []
    for pair in pairs:
        plan = plan_tiles(method, *pair.noisy.shape[-2:], refine=refine, tile=None)
        out = denoise_image(method, pair.noisy, refine=refine, plan=plan)
        scores.append(float(psnr(out[None].clamp(0, 1), pair.clean[None])[0]))
    return statistics.fmean(scores)


if __name__ == "__main__":
    sys.exit(main())
