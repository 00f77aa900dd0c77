"""Zero-shot AMSNet on PolyU crops: fit on each noisy crop alone, then score it.

    python benchmarks/zero_shot_polyu.py --root ../shared/data/polyu/CroppedImages \\
        --steps 1000 --images 4

For each of ``--images`` crops spread over the set: PSNR of the noisy crop, of the zero-shot
result without (B) and with R3 (E), and the fitting time. The mean gain is printed last.
The ground truth is used for scoring only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import amsnet
from amsnet.data.pairs import PairedFolder
from amsnet.inference import denoise_image
from amsnet.metrics import psnr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="../shared/data/polyu/CroppedImages")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--settings", default="{}", help="JSON of AMSNet settings to override")
    args = parser.parse_args(argv)
    pairs = PairedFolder(args.root, rule="polyu")
    chosen = [int(i * len(pairs) / args.images) for i in range(args.images)]
    rows = []
    for index in chosen:
        item = pairs[index]
        tic = time.perf_counter()
        method = amsnet.fit(
            [item["noisy"]], steps=args.steps, device="cpu", **json.loads(args.settings)
        )
        seconds = time.perf_counter() - tic
        noisy = float(psnr(item["noisy"][None], item["clean"][None]))
        scores = [
            float(psnr(denoise_image(method, item["noisy"], refine=r)[None], item["clean"][None]))
            for r in (False, True)
        ]
        rows.append((noisy, *scores))
        print(
            f"{item['name']}: noisy {noisy:.2f}, B {scores[0]:.2f}, E {scores[1]:.2f} dB "
            f"(fit {seconds:.0f} s)",
            flush=True,
        )
    mean = [statistics.fmean(column) for column in zip(*rows, strict=True)]
    print(
        f"mean: noisy {mean[0]:.2f}, B {mean[1]:.2f} ({mean[1] - mean[0]:+.2f}), "
        f"E {mean[2]:.2f} ({mean[2] - mean[0]:+.2f}) dB over {len(rows)} crops"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
