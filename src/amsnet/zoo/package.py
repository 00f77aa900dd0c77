"""Make a shipped weights file: a trained model plus its model card in the header.

    python -m amsnet.zoo.package runs/zoo-nafnet-teacher-p/last.safetensors \\
        --card configs/zoo/cards/amsnet-nafnet-p.json \\
        -o src/amsnet/zoo/weights/amsnet-nafnet-p.safetensors

The card (JSON: training data and its terms, recipe, steps, compute, figures) is merged with
what the weights file itself records (its training metrics, the parameter count) and written
into the ``amsnet.card`` header field; the weights are stored unchanged. The command prints
the new file's sha256, which goes into :data:`amsnet.zoo.SHIPPED`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from amsnet.atomic import check_new_output
from amsnet.checkpoint import load_pretrained, read_header, save_pretrained
from amsnet.zoo import file_sha256


def package(
    weights: str | Path, card_file: str | Path, output: str | Path, *, overwrite: bool = False
) -> str:
    """Write ``weights`` with the card of ``card_file`` to ``output``; returns its sha256."""
    target = check_new_output(output, overwrite=overwrite, inputs=[weights, card_file])
    header = read_header(weights)
    method = load_pretrained(weights)
    card = json.loads(Path(card_file).read_text(encoding="utf-8"))
    card["parameters"] = sum(p.numel() for p in method.parameters())
    card["training_metrics"] = header.get("metrics")
    save_pretrained(
        method, target, metrics=header.get("metrics"), source=header.get("source"), card=card
    )
    return file_sha256(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("--card", type=Path, required=True)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    print(package(args.weights, args.card, args.output, overwrite=args.overwrite))
    return 0


if __name__ == "__main__":
    sys.exit(main())
