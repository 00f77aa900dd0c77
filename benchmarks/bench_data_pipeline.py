"""Training-crop throughput of :class:`amsnet.data.folders.NoisyFolder` through a DataLoader.

For every combination of DataLoader workers and image cache it prints crops per second over
two epochs, each of ``--crops`` random crops (``--crop`` pixels square, batches of
``--batch``):

* ``decode``: no cache, every crop decodes its image (``memory_cache_bytes=0``);
* ``memory``: decoded images kept in process memory (the default);
* ``mmap``: every image decoded once into a memory-mapped file (``cache_dir``); the time to
  build that file is printed separately.

Workers are not persistent (the DataLoader default), so each epoch starts new worker processes
with the main process's copy of the dataset.

    python benchmarks/bench_data_pipeline.py                          # kodak24 from shared/
    python benchmarks/bench_data_pipeline.py --root DIR --workers 0 2 4 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from amsnet.data.cache import DecodedImageCache
from amsnet.data.folders import list_images, NoisyFolder

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak24"


def crops_per_second(dataset: NoisyFolder, workers: int, batch: int, epochs: int) -> list[float]:
    """Crops per second of each epoch, DataLoader start-up included."""
    rates = []
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        loader = DataLoader(dataset, batch_size=batch, shuffle=False, num_workers=workers)
        start = time.perf_counter()
        count = 0
        for crops in loader:
            count += crops.shape[0]
        rates.append(count / (time.perf_counter() - start))
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="folder of images")
    parser.add_argument("--crop", type=int, default=160, help="crop side (default 160)")
    parser.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--crops", type=int, default=400, help="crops per epoch (default 400)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per setting (default 2)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json")
    args = parser.parse_args(argv)
    if args.json is not None:
        from amsnet.atomic import check_new_output

        check_new_output(args.json, overwrite=args.overwrite, flag="--json")
    if not args.root.is_dir():
        print(f"{args.root} is absent; pass --root with a folder of images", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    images = list_images(args.root)
    print(
        f"{args.root}: {len(images)} images; crop {args.crop}, batch {args.batch}, "
        f"{args.crops} crops per epoch, {args.epochs} epochs; torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}"
    )
    results = []
    with tempfile.TemporaryDirectory() as cache_dir:
        start = time.perf_counter()
        DecodedImageCache.open_or_build(args.root, images, cache_dir)
        build_seconds = time.perf_counter() - start
        print(f"mmap cache built in {build_seconds:.2f} s (once per folder, reused afterwards)")
        settings = {
            "decode": {"memory_cache_bytes": 0},
            "memory": {},
            "mmap": {"cache_dir": cache_dir},
        }
        for workers in args.workers:
            for cache, options in settings.items():
                dataset = NoisyFolder(
                    args.root, crop_size=args.crop, crops_per_epoch=args.crops, **options
                )
                rates = crops_per_second(dataset, workers, args.batch, args.epochs)
                results.append({"workers": workers, "cache": cache, "crops_per_second": rates})
                shown = "  ".join(f"epoch {e}: {rate:7.1f}" for e, rate in enumerate(rates))
                print(f"workers {workers}  cache {cache:6s}  crops/s  {shown}")
    if args.json:
        from amsnet.atomic import atomic_write

        text = json.dumps({"build_seconds": build_seconds, "runs": results})
        atomic_write(args.json, lambda tmp: tmp.write_text(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
