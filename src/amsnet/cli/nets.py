"""``amsnet nets``: the registered backbones, their presets and parameter counts."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("nets", help="list the backbones and their presets")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from amsnet.nets import create_net, list_nets, list_presets

    rows = []
    for name in list_nets():
        for preset, kwargs in list_presets(name).items():
            net = create_net(name, preset=preset)
            rows.append(
                {
                    "net": name,
                    "preset": preset,
                    "parameters": sum(p.numel() for p in net.parameters()),
                    "size_multiple": net.size_multiple,
                    "blind_spot": bool(net.blind_spot),
                    "arguments": kwargs,
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'net':<10} {'preset':<8} {'parameters':>12} {'multiple':>8}  blind-spot")
    for row in rows:
        print(
            f"{row['net']:<10} {row['preset']:<8} {row['parameters']:>12,} "
            f"{row['size_multiple']:>8}  {'yes' if row['blind_spot'] else 'no'}"
        )
    return 0
