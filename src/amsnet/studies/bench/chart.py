"""PSNR versus time per image, like the supplement's Figure 5, as SVG and PNG (matplotlib).

x: time per image on a log scale; y: PSNR (dB); one labelled point per record. The points come
from a results file (CSV, or JSON: a list of records or an object with a ``results`` list),
each record with a label, a PSNR and a time per image (``seconds_per_image`` or
``ms_per_image``; other fields can be chosen). ``paper=True`` adds the points the supplement
reports (§1.6 / Fig. 5) as a second series.

The chart is drawn once as a matplotlib figure (its object API on the Agg canvas: no pyplot,
no global state, no window) and saved as SVG (text kept as text) and, optionally, PNG at twice
the size. matplotlib is the optional extra ``amsnet[plot]``; what is ours is the reading of
results files with errors that name the record and field, the paper's points, and the label
placement that keeps labels of close points apart.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amsnet.atomic import atomic_path
from amsnet.errors import DataError

TIME_FIELDS = ("seconds_per_image", "ms_per_image")
"""Time fields looked for, in this order, when none is chosen."""


@dataclass(frozen=True)
class Point:
    """One labelled point.

    Attributes:
        label: text beside the point.
        seconds: time per image, seconds (> 0).
        psnr: PSNR, dB.
    """

    label: str
    seconds: float
    psnr: float


@dataclass(frozen=True)
class Series:
    """Points drawn alike, named in the legend."""

    name: str
    points: tuple[Point, ...]


PAPER_SERIES = Series(
    "supplement Fig. 5 (SIDD validation, RTX 3090)",
    (
        Point("AP-BSN", 0.26, 36.74),
        Point("AMSNet (DnCNN)", 0.038, 36.93),
        Point("AMSNet (Restormer)", 1.802, 37.93),
    ),
)
"""The runtimes and PSNRs the supplement gives in numbers (§1.6); Fig. 5's other points are
drawn only."""


# -- reading ---------------------------------------------------------------------------------


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a CSV file (one per row) or a JSON file (see the module docstring).

    Raises:
        DataError: the file is missing, unreadable, not CSV/JSON, or holds no records.
    """
    source = Path(path)
    if not source.is_file():
        raise DataError(f"{source}: no such results file; give the CSV or JSON file to chart")
    suffix = source.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise DataError(f"{source}: results must be a .csv or .json file, not {suffix!r}")
    try:
        text = source.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{source}: cannot be read as UTF-8 text ({error})") from None
    if suffix == ".csv":
        records: Any = list(csv.DictReader(text.splitlines()))
    else:
        try:
            records = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{source}: not valid JSON ({error})") from None
        if isinstance(records, dict):
            records = records.get("results", records.get("records"))
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataError(
            f"{source}: expected a list of records (objects), or an object whose 'results' "
            "is such a list"
        )
    if not records:
        raise DataError(f"{source}: holds no records")
    return records


def read_points(
    path: str | os.PathLike[str],
    *,
    x_field: str | None = None,
    y_field: str = "psnr",
    label_field: str = "label",
    x_unit: str = "auto",
) -> list[Point]:
    """The chart points of a results file.

    Args:
        path: CSV or JSON results file.
        x_field: the time field (default: the first of :data:`TIME_FIELDS` present).
        y_field: the PSNR field.
        label_field: the label field.
        x_unit: ``"s"``, ``"ms"`` or ``"auto"`` (milliseconds when the field name has an
            ``ms`` part, like ``ms_per_image``).

    Raises:
        DataError: naming the file, the record and the field: a field is missing, empty or
            not a finite number, or a time is negative. A time of 0 (a baseline that computes
            nothing, such as the noisy input) is drawn as a horizontal reference line, since the
            time axis is logarithmic.
    """
    source = Path(path)
    records = read_records(source)
    present = sorted({key for record in records for key in record})
    if x_field is None:
        x_field = next((f for f in TIME_FIELDS if any(f in r for r in records)), None)
        if x_field is None:
            raise DataError(
                f"{source}: no time field; records need one of {list(TIME_FIELDS)} (or choose "
                f"one with --x-field); fields present: {present}"
            )
    if x_unit not in ("auto", "s", "ms"):
        raise DataError(f"unknown time unit {x_unit!r}; use 's', 'ms' or 'auto'")
    if x_unit == "auto":
        x_unit = "ms" if "ms" in x_field.lower().replace("-", "_").split("_") else "s"
    scale = 1e-3 if x_unit == "ms" else 1.0
    points = []
    for number, record in enumerate(records, start=1):
        label = _value(f"{source}: record {number}", record, label_field, present, "--label-field")
        where = f"{source}: record {number} ({label!r})"
        psnr = _number(where, record, y_field, present, "--y-field")
        seconds = _number(where, record, x_field, present, "--x-field") * scale
        if seconds < 0:
            raise DataError(
                f"{where}: field {x_field!r} is {record[x_field]!r}; times cannot be negative"
            )
        points.append(Point(str(label), seconds, psnr))
    return points


def _value(where: str, record: dict[str, Any], name: str, present: list[str], option: str) -> Any:
    """The field's value; missing or empty fields raise, naming the field and the option."""
    value = record.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        state = "is empty" if name in record else "is missing"
        raise DataError(
            f"{where}: field {name!r} {state}; fields present: {present} "
            f"(choose another with {option})"
        )
    return value


def _number(
    where: str, record: dict[str, Any], name: str, present: list[str], option: str
) -> float:
    value = _value(where, record, name, present, option)
    if isinstance(value, bool):
        raise DataError(f"{where}: field {name!r} is {value!r}, not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: field {name!r} is {value!r}, not a number") from None
    if not math.isfinite(number):
        raise DataError(f"{where}: field {name!r} is {value!r}, not a finite number")
    return number


# -- drawing ---------------------------------------------------------------------------------

WIDTH, HEIGHT = 760, 500
"""The SVG's size in pixels (at 100 per inch); the PNG has twice as many per side."""
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
MARKERS = ("o", "D", "s", "^")
LABEL_OFFSETS = (
    (7, 0, "left", "center"),
    (-7, 0, "right", "center"),
    (0, 8, "center", "bottom"),
    (0, -8, "center", "top"),
    (7, 8, "left", "bottom"),
    (-7, -8, "right", "top"),
)
"""Where a point's label may go, in typographic points from the point, in order of preference."""


def _pyplot_free_figure() -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise DataError(
            "charts need matplotlib, which is not installed: pip install 'amsnet[plot]'"
        ) from None
    figure = Figure(figsize=(WIDTH / 100, HEIGHT / 100), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def format_seconds(seconds: float) -> str:
    """A tick label: milliseconds below one second, seconds above.

    Example:
        >>> format_seconds(0.01), format_seconds(0.2), format_seconds(1.0), format_seconds(20.0)
        ('10 ms', '200 ms', '1 s', '20 s')
    """
    if seconds < 1:
        return f"{seconds * 1e3:g} ms"
    return f"{seconds:g} s"


def draw_chart(series: Sequence[Series], *, title: str) -> Any:
    """The chart as a matplotlib ``Figure``: one scatter per series on a log time axis, a
    dashed reference line for every zero-time point (a baseline that computes nothing), a
    label beside every point, placed clear of the markers and of the labels before it.

    Raises:
        DataError: no point at all, or matplotlib missing.
    """
    every = [point for group in series for point in group.points]
    if not [point for point in every if point.seconds > 0]:
        raise DataError("nothing to chart: no point with a positive time")
    from matplotlib.ticker import FuncFormatter

    figure = _pyplot_free_figure()
    axes = figure.add_subplot()
    figure.subplots_adjust(left=0.09, right=0.96, top=0.84, bottom=0.12)
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: format_seconds(value)))
    axes.grid(True, which="major", color="#d0d0d0", linestyle="--", linewidth=0.8)
    axes.grid(True, which="minor", axis="x", color="#ececec", linestyle="--", linewidth=0.6)
    axes.set_axisbelow(True)
    axes.set_xlabel("time per image (log scale)")
    axes.set_ylabel("PSNR (dB)")
    figure.suptitle(title, fontsize=14, fontweight="bold")
    low = min(point.psnr for point in every)
    high = max(point.psnr for point in every)
    margin = (high - low) * 0.1 or 0.5
    axes.set_ylim(low - margin, high + margin)
    timed = [point.seconds for point in every if point.seconds > 0]
    axes.set_xlim(10 ** math.floor(math.log10(min(timed))), 10 ** math.ceil(math.log10(max(timed))))
    placed = []
    for index, group in enumerate(series):
        colour, marker = COLOURS[index % len(COLOURS)], MARKERS[index % len(MARKERS)]
        points = [point for point in group.points if point.seconds > 0]
        axes.scatter(
            [p.seconds for p in points],
            [p.psnr for p in points],
            color=colour,
            marker=marker,
            s=36,
            zorder=3,
            label=group.name,
        )
        for point in group.points:
            if point.seconds == 0:
                axes.axhline(point.psnr, color=colour, linestyle="--", linewidth=1.5)
                axes.annotate(
                    f"{point.label} ({point.psnr:.2f} dB)",
                    xy=(0, point.psnr),
                    xycoords=("axes fraction", "data"),
                    xytext=(6, 4),
                    textcoords="offset points",
                    color=colour,
                )
    axes.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncol=max(1, len(series)), frameon=False)
    renderer = figure.canvas.get_renderer()
    frame = axes.get_window_extent(renderer)
    for group_index, group in enumerate(series):
        colour = COLOURS[group_index % len(COLOURS)]
        for point in group.points:
            if point.seconds > 0:
                placed.append(_place_label(axes, renderer, frame, point, colour, placed))
    return figure


def _place_label(axes: Any, renderer: Any, frame: Any, point: Point, colour: str, placed: list):
    """Annotate ``point`` at the first of :data:`LABEL_OFFSETS` whose box stays inside the
    axes and clear of every marker and earlier label (else at the first); returns the box."""
    from matplotlib.transforms import Bbox

    markers = [Bbox.from_extents(x - 6, y - 6, x + 6, y + 6) for x, y in _marker_xy(axes)]
    tries = (*LABEL_OFFSETS, LABEL_OFFSETS[0])  # nowhere clear: the first place after all
    for number, (dx, dy, horizontal, vertical) in enumerate(tries, start=1):
        label = axes.annotate(
            point.label,
            xy=(point.seconds, point.psnr),
            xytext=(dx, dy),
            textcoords="offset points",
            ha=horizontal,
            va=vertical,
            color=colour,
            fontsize=10,
        )
        box = label.get_window_extent(renderer)
        inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
        clear = not any(box.overlaps(other) for other in placed + markers)
        if (inside and clear) or number == len(tries):
            return box
        label.remove()
    raise AssertionError("unreachable: the last try always returns")


def _marker_xy(axes: Any) -> list[tuple[float, float]]:
    """Display coordinates of every scatter marker drawn on ``axes``."""
    return [
        tuple(axes.transData.transform(offset))
        for collection in axes.collections
        for offset in collection.get_offsets()
    ]


def write_chart(
    points: Sequence[Point],
    path: str | os.PathLike[str],
    *,
    title: str = "PSNR versus time per image",
    name: str = "measured",
    paper: bool = False,
    png: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Write the chart as SVG to ``path`` (and as PNG to ``png``), atomically.

    Args:
        points: the measured points.
        path: the SVG file.
        title: the chart's title.
        name: the legend entry of ``points``.
        paper: add :data:`PAPER_SERIES`.
        png: also paint a PNG here, at twice the SVG's size.

    Returns:
        The files written.

    Raises:
        DataError: no point to chart, or matplotlib missing.
    """
    import matplotlib

    series = [Series(name, tuple(points))] if points else []
    if paper:
        series.append(PAPER_SERIES)
    figure = draw_chart(series, title=title)
    written = []
    # Text stays text in the SVG (searchable, small), not outlines.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "amsnet"}):
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="svg", metadata={"Date": None})
        written.append(Path(path))
    if png is not None:
        with atomic_path(png) as tmp:
            figure.savefig(tmp, format="png", dpi=200)
        written.append(Path(png))
    return written
