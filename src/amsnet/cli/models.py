"""``amsnet models``: the trained models shipped inside the package."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "models",
        help="list the shipped models (amsnet denoise --model NAME)",
        description="The trained models inside the package, the default first.",
    )
    parser.add_argument("--card", metavar="NAME", help="print one model's full card (JSON)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from amsnet.checkpoint import read_header
    from amsnet.zoo import DEFAULT_MODEL, list_models, model_path

    if args.card:
        header = read_header(model_path(args.card))
        print(json.dumps(header, indent=2, sort_keys=True))
        return 0
    rows = []
    for model in list_models():
        header = read_header(model_path(model.name))
        card = header.get("card") or {}
        rows.append(
            {
                "name": model.name,
                "default": model.name == DEFAULT_MODEL,
                "role": model.role,
                "method": header["config"]["method"]["name"],
                "net": header["config"]["net"],
                "parameters": card.get("parameters"),
                "megabytes": round(model.path.stat().st_size / 1e6, 2),
                "summary": model.summary,
                "figures": card.get("figures"),
                "retrain": model.config,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no shipped models in this installation")
        return 1
    print(f"{'name':<18} {'role':<8} {'method':<10} {'parameters':>10} {'MB':>6}  summary")
    for row in rows:
        mark = " (default)" if row["default"] else ""
        parameters = f"{row['parameters']:,}" if row["parameters"] else "?"
        print(
            f"{row['name']:<18} {row['role']:<8} {row['method']:<10} {parameters:>10} "
            f"{row['megabytes']:>6}  {row['summary']}{mark}"
        )
    print("\namsnet models --card NAME prints a model's card (data, recipe, figures, sha256)")
    return 0
