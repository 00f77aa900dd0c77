"""``amsnet bench``: compute cost, speed and memory, PSNR-versus-time charts, and the
equal-budget quality study.

Each benchmark is a sub-command: a function ``_add_<name>(sub)`` registers its parser and sets
``run`` to its ``_run_<name>(args) -> int``; :data:`SUBCOMMANDS` lists the adders. A new
benchmark is one more pair of functions and one more entry there.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from amsnet.cli.options import add_precision_argument


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "bench",
        help="benchmarks: cost (params, FLOPs), speed (time, memory), chart (PSNR vs time), "
        "quality (every method at equal budget)",
        description="Benchmarks of the methods and backbones; see benchmarks/README.md.",
    )
    benchmarks = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    for add in SUBCOMMANDS:
        add(benchmarks)

    def usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(run=usage)


# -- cost ------------------------------------------------------------------------------------


def _add_cost(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "cost",
        help="parameters, FLOPs and backbone passes per method, beside the supplement's Table 1",
        description=(
            "Counts parameters, the FLOPs of one backbone pass and of the whole denoise "
            "(B and E) on a 1x3x160x160 image (on the meta device: shapes only, no arithmetic), "
            "and compares them with the supplement's Table 1. Prints markdown."
        ),
    )
    parser.add_argument("--nets", nargs="+", default=None, help="backbones (default: all)")
    parser.add_argument("--preset", default="paper", help="preset of every backbone")
    parser.add_argument("--size", type=int, default=160, help="image side (Table 1: 160)")
    parser.add_argument("--json", type=Path, help="also write the counts to this JSON file")
    _add_overwrite(parser)
    parser.set_defaults(run=_run_cost)


def _run_cost(args: argparse.Namespace) -> int:
    from amsnet.atomic import atomic_path
    from amsnet.studies.bench.cost import cost_markdown, cost_records, measure_costs, summary

    _check_outputs(args, json=args.json)
    rows = measure_costs(args.nets, args.preset, args.size)
    print(cost_markdown(rows), end="")
    if args.json is not None:
        payload = {"rows": cost_records(rows), "summary": summary(rows)}
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


def _add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _check_outputs(args: argparse.Namespace, **files: Path | None) -> None:
    """Every file the benchmark will write, checked before it measures anything."""
    from amsnet.atomic import check_new_output
    from amsnet.errors import ConfigError

    inputs = [args.results] if getattr(args, "results", None) is not None else []
    named = {("-o" if k == "output" else f"--{k}"): p for k, p in files.items() if p is not None}
    for flag, path in named.items():
        check_new_output(path, overwrite=args.overwrite, inputs=inputs, flag=flag)
    if len({p.resolve() for p in named.values()}) < len(named):
        raise ConfigError(f"{' and '.join(named)} name the same file; give each its own")


# -- speed -----------------------------------------------------------------------------------


def _add_speed(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "speed",
        help="time and peak memory per image and per megapixel, against a conv ceiling",
        description=(
            "Times AMSNet (B and E) per backbone and AP-BSN (with and without R3) on this "
            "device: ms per image, ms per megapixel, peak memory, scheme overhead, GFLOP per "
            "image and the share of a measured 3x3 convolution ceiling. Prints markdown."
        ),
    )
    parser.add_argument("--nets", nargs="+", default=None, help="backbones (default: all)")
    parser.add_argument("--preset", default="paper", help="preset of every backbone")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs without R3")
    parser.add_argument("--refine-repeats", type=int, default=1, help="timed runs with R3")
    parser.add_argument("--no-refine", action="store_true", help="skip the R3 variants")
    parser.add_argument("--size", type=int, default=256, help="side of the timed image")
    parser.add_argument(
        "--megapixel-size",
        type=int,
        default=1024,
        help="side of the image the ms per megapixel is timed on (R3 at 1024x1024 on a CPU "
        "takes about 16 times the 256x256 time)",
    )
    parser.add_argument("--no-megapixel", action="store_true", help="skip ms per megapixel")
    parser.add_argument(
        "--layout",
        choices=["channels_last", "default"],
        default="channels_last",
        help="memory format of the weights (default: channels_last, what inference uses)",
    )
    parser.add_argument("--keep-allocator", action="store_true", help="do not tune glibc malloc")
    add_precision_argument(
        parser,
        default=["fp32"],
        many=True,
        help="backbone precisions, measured side by side (e.g. fp32 bf16; default fp32)",
    )
    parser.add_argument(
        "--refine-batch",
        type=int,
        help="R3 passes per backbone call for the E variants (default: what denoise chooses, "
        "a pixel limit per device)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    _add_overwrite(parser)
    parser.set_defaults(run=_run_speed)


def _run_speed(args: argparse.Namespace) -> int:
    from amsnet.atomic import atomic_path
    from amsnet.studies.bench.speed import run_speed, speed_markdown, SpeedOptions

    _check_outputs(args, json=args.json, markdown=args.markdown)
    options = SpeedOptions(
        nets=args.nets,
        preset=args.preset,
        device=args.device,
        repeats=args.repeats,
        refine_repeats=args.refine_repeats,
        refine=not args.no_refine,
        refine_batch=args.refine_batch,
        size=args.size,
        megapixel_size=None if args.no_megapixel else args.megapixel_size,
        layout=args.layout,
        tune_allocator=not args.keep_allocator,
        precisions=tuple(args.precision),
    )

    def save(report: dict) -> None:
        # After every record: a long run that is killed keeps what it measured.
        if args.json is not None:
            with atomic_path(args.json) as tmp:
                tmp.write_text(json.dumps(report, indent=2) + "\n")
        if args.markdown is not None:
            with atomic_path(args.markdown) as tmp:
                tmp.write_text(speed_markdown(report))

    report = run_speed(options, on_record=save)
    print(speed_markdown(report), end="")
    save(report)
    return 0


# -- chart -----------------------------------------------------------------------------------


def _add_chart(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "chart",
        help="PSNR versus time per image (log scale) from a results file, as SVG/PNG",
        description=(
            "Draws one labelled point per record of a CSV or JSON results file (fields: a "
            "label, a PSNR, and seconds_per_image or ms_per_image), like the supplement's "
            "Fig. 5."
        ),
    )
    parser.add_argument("results", type=Path, help="CSV or JSON file of records")
    parser.add_argument("-o", "--output", type=Path, default=Path("psnr_vs_time.svg"))
    parser.add_argument("--png", type=Path, help="also paint the chart into this PNG file")
    parser.add_argument("--x-field", help="time field (default: seconds_per_image/ms_per_image)")
    parser.add_argument(
        "--x-unit", choices=["auto", "s", "ms"], default="auto", help="unit of the time field"
    )
    parser.add_argument("--y-field", default="psnr", help="PSNR field (default: psnr)")
    parser.add_argument("--label-field", default="label", help="label field (default: label)")
    parser.add_argument("--title", default="PSNR versus time per image")
    parser.add_argument("--name", help="legend entry of the file's points (default: file name)")
    parser.add_argument(
        "--paper",
        action="store_true",
        help="add the supplement's Fig. 5 points (SIDD validation, RTX 3090)",
    )
    _add_overwrite(parser)
    parser.set_defaults(run=_run_chart)


def _run_chart(args: argparse.Namespace) -> int:
    from amsnet.studies.bench.chart import read_points, write_chart

    _check_outputs(args, output=args.output, png=args.png)
    points = read_points(
        args.results,
        x_field=args.x_field,
        y_field=args.y_field,
        label_field=args.label_field,
        x_unit=args.x_unit,
    )
    written = write_chart(
        points,
        args.output,
        title=args.title,
        name=args.name or args.results.name,
        paper=args.paper,
        png=args.png,
    )
    for path in written:
        print(path)
    return 0


# -- quality ---------------------------------------------------------------------------------


def _add_quality(sub: argparse._SubParsersAction) -> None:
    from amsnet.studies.bench.quality import ALL_METHODS, METHODS

    parser = sub.add_parser(
        "quality",
        help="train every method on a dataset's noisy images at equal budget; PSNR/SSIM table",
        description=(
            "Self-supervised training on the noisy images of DATASET themselves (the ground "
            "truth only scores them; the supervised ceiling trains on the pairs), equal CPU-time "
            "budgets, several seeds. Writes summary.md / .csv / .json, results.csv and "
            "comparison.png into OUTPUT; re-running with the same arguments resumes."
        ),
    )
    parser.add_argument(
        "dataset", choices=["polyu", "cc", "folders", "camera", "awgn"], help="kind of data"
    )
    parser.add_argument("root", help="dataset folder (clean images for camera / awgn)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="results folder")
    parser.add_argument("--clean-root", help="clean images for 'folders'")
    parser.add_argument("--sigma", type=float, help="AWGN sigma on the 0-255 scale")
    parser.add_argument("--level", default="medium", help="camera noise: low, medium, high")
    parser.add_argument(
        "--images", type=int, default=15, help="evenly spaced images to use (0: all; default 15)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--cpu-seconds", type=float, default=240.0, help="training budget per model (CPU s)"
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(METHODS),
        metavar="METHOD",
        help=f"rows to compute (default: all but the ablation); any of {', '.join(ALL_METHODS)}",
    )
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="the identity-mapping ablation (supplement 1.8): noisy, AP-BSN loss and AMSNet "
        "with an ordinary network, and AP-BSN with its blind-spot network",
    )
    parser.add_argument("--net", default="nafnet", help="AMSNet / supervised backbone")
    parser.add_argument("--preset", default="small", help="its preset")
    parser.add_argument(
        "--ordinary-net",
        default="dbsnl",
        help="ablation network: dbsnl (made ordinary, as the supplement) or a backbone name",
    )
    parser.add_argument("--crop", type=int, default=64, help="training crop side")
    parser.add_argument("--batch-size", type=int, default=8, help="crops per step")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    parser.add_argument(
        "--finetune-lr", type=float, default=2e-4, help="peak learning rate of AMSNet-P's L_t"
    )
    parser.add_argument(
        "--finetune-share", type=float, default=0.25, help="share of AMSNet-P's budget for L_t"
    )
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="AMSNet / AP-BSN overrides, e.g. amsnet.pd_factor_train=3 apbsn.pd_pad=0",
    )
    parser.add_argument("--device", default="auto")
    parser.set_defaults(run=_run_quality)


def _run_quality(args: argparse.Namespace) -> int:
    import yaml

    from amsnet.errors import ConfigError
    from amsnet.studies.bench.quality import load_config, run_study

    overrides: dict[str, dict[str, object]] = {"amsnet": {}, "apbsn": {}}
    for item in args.set:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or section not in overrides:
            raise ConfigError(f"--set {item!r}: write amsnet.KEY=VALUE or apbsn.KEY=VALUE")
        overrides[section][name] = yaml.safe_load(value)
    methods = args.methods
    if args.ablation:
        methods = ["noisy", "apbsn-ordinary", "amsnet-ordinary", "apbsn-r3"]
    config = load_config(
        {
            "dataset": args.dataset,
            "root": args.root,
            "clean_root": args.clean_root,
            "sigma": args.sigma,
            "level": args.level,
            "images": args.images or None,
            "seeds": args.seeds,
            "cpu_seconds": args.cpu_seconds,
            "methods": methods,
            "net": args.net,
            "preset": args.preset,
            "crop": args.crop,
            "ordinary_net": args.ordinary_net,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "finetune_lr": args.finetune_lr,
            "finetune_share": args.finetune_share,
            "device": args.device,
            **overrides,
        }
    )
    summary = run_study(config, args.output)
    print((args.output / "summary.md").read_text(), end="")
    print(f"wrote {args.output / 'summary.md'} and {args.output / 'comparison.png'}")
    return 0 if summary["rows"] else 1


SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _add_cost,
    _add_speed,
    _add_chart,
    _add_quality,
)
"""The ``amsnet bench`` sub-commands, in the order ``--help`` lists them."""
