"""Make ``docs/serve.png``: the page of ``amsnet serve`` after one real photo.

Serves the default shipped model on a free loopback port, uploads a PolyU camera crop
(``../shared/data/polyu/CroppedImages``; without it, a scikit-image photo with synthetic
camera noise) through the page's file picker in headless Chromium, waits for the result and
captures the page at 1280 pixels wide.

    python benchmarks/serve_screenshot.py --out docs/serve.png --overwrite
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
POLYU_CROP = SHARED / "polyu" / "CroppedImages" / "Canon5D2_5_200_3200_toy_3_real.JPG"
BROWSER_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _photo(folder: Path) -> Path:
    if POLYU_CROP.is_file():
        return POLYU_CROP
    import torch
    from skimage import data as skimage_data

    from amsnet.data.camera_noise import camera_noise
    from amsnet.data.io import write_image

    clean = torch.from_numpy(skimage_data.astronaut()[:384, :384].copy())
    clean = clean.permute(2, 0, 1).float().div(255)[None]
    noisy, _, _ = camera_noise(clean, seed=0, iso_like_level="high")
    return write_image(folder / "astronaut_camera_noise.png", noisy[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/serve.png"))
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    if args.out.exists() and not args.overwrite:
        print(f"{args.out} exists; pass --overwrite", file=sys.stderr)
        return 2
    chromium = shutil.which("chromium")
    if chromium is None:
        print("needs Debian's chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    from amsnet.serve import JobQueue, LocalServer, offered_models

    with tempfile.TemporaryDirectory() as scratch:
        photo = _photo(Path(scratch))
        server = LocalServer(JobQueue(offered_models(), device="cpu"), port=0)
        address = server.start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=BROWSER_FLAGS)
                page = browser.new_page(viewport={"width": 1280, "height": 1100})
                page.goto(address)
                page.wait_for_selector("#model option", state="attached")
                page.set_input_files("#files", str(photo))
                page.wait_for_selector(".job.done img.after", timeout=300_000)
                page.wait_for_function(
                    "() => [...document.querySelectorAll('.job.done img')]"
                    ".every(i => i.complete && i.naturalWidth > 0)"
                )
                tmp = args.out.with_name(f".{args.out.name}.tmp.png")
                page.screenshot(path=str(tmp), full_page=True)
                tmp.replace(args.out)
                browser.close()
        finally:
            server.stop()
    print(f"wrote {args.out} (photo: {photo.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
