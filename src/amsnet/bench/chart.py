"""PSNR versus time per image, like the supplement's Figure 5, as SVG (and PNG through Pillow).

x: time per image on a log scale; y: PSNR (dB); one labelled point per record. The points come
from a results file (CSV, or JSON: a list of records or an object with a ``results`` list),
each record with a label, a PSNR and a time per image (``seconds_per_image`` or
``ms_per_image``; other fields can be chosen). ``paper=True`` adds the points the supplement
reports (§1.6 / Fig. 5) as a second series.

The chart is drawn once as a list of shapes in pixel coordinates, then written by a small SVG
writer or painted with Pillow, so both files show the same thing; no plotting library needed.
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
from xml.sax.saxutils import escape, quoteattr

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
LEFT, RIGHT, TOP, BOTTOM = 70, 30, 78, 58
FONT = 13
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
MARKERS = ("circle", "diamond", "square", "triangle")


@dataclass(frozen=True)
class Line:
    """A straight line, pixels; ``dashed`` for grid lines."""

    x1: float
    y1: float
    x2: float
    y2: float
    colour: str = "#000000"
    width: float = 1.0
    dashed: bool = False


@dataclass(frozen=True)
class Marker:
    """A filled marker centred on ``(x, y)``; ``shape`` is one of :data:`MARKERS`."""

    x: float
    y: float
    shape: str
    colour: str
    radius: float = 5.0


@dataclass(frozen=True)
class Text:
    """Text whose vertical middle is at ``y``; ``anchor``: start, middle or end at ``x``."""

    x: float
    y: float
    text: str
    size: int = FONT
    anchor: str = "start"
    colour: str = "#000000"
    vertical: bool = False
    bold: bool = False


Shape = Line | Marker | Text


def time_ticks(low: float, high: float) -> tuple[float, float, list[float]]:
    """Axis limits (whole decades) and tick positions for times in ``[low, high]`` seconds.

    Example:
        >>> time_ticks(0.038, 1.802)[:2]
        (0.01, 10.0)
    """
    first = math.floor(math.log10(low))
    last = math.ceil(math.log10(high))
    if last == first:
        last += 1
    steps = (1, 2, 5) if last - first <= 3 else (1,)
    ticks = [
        step * 10.0**exponent
        for exponent in range(first, last + 1)
        for step in steps
        if step * 10.0**exponent <= 10.0**last * 1.0001
    ]
    return 10.0**first, 10.0**last, ticks


def psnr_ticks(low: float, high: float) -> tuple[float, float, list[float]]:
    """Axis limits and about six evenly spaced ticks on a 1-2-2.5-5 step for ``[low, high]``.

    Example:
        >>> psnr_ticks(36.74, 37.93)
        (36.6, 38.0, [36.6, 36.8, 37.0, 37.2, 37.4, 37.6, 37.8, 38.0])
    """
    span = high - low
    if span <= 0:
        span = max(abs(high) * 0.02, 0.5)
        low, high = low - span / 2, high + span / 2
    raw = span / 6
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    stop = math.ceil(high / step) * step
    count = round((stop - start) / step)
    ticks = [round(start + i * step, 10) for i in range(count + 1)]
    return ticks[0], ticks[-1], ticks


def format_seconds(seconds: float) -> str:
    """A tick label: milliseconds below one second, seconds above.

    Example:
        >>> format_seconds(0.01), format_seconds(0.2), format_seconds(1.0), format_seconds(20.0)
        ('10 ms', '200 ms', '1 s', '20 s')
    """
    if seconds < 1:
        return f"{seconds * 1e3:g} ms"
    return f"{seconds:g} s"


def _text_width(text: str, size: int) -> float:
    """An estimate of the rendered width (both writers' sans-serif fonts average ~0.58 em)."""
    return 0.58 * size * len(text)


def chart_shapes(series: Sequence[Series], *, title: str) -> list[Shape]:
    """Everything the chart draws, in pixel coordinates of a ``WIDTH x HEIGHT`` canvas.

    Raises:
        DataError: no points at all.
    """
    every = [point for group in series for point in group.points]
    points = [point for point in every if point.seconds > 0]
    if not points:
        raise DataError("nothing to chart: no point with a positive time")
    x_low, x_high, x_ticks = time_ticks(
        min(p.seconds for p in points), max(p.seconds for p in points)
    )
    # A margin of a tenth of the span above and below keeps points off the frame.
    psnr_low = min(p.psnr for p in every)
    psnr_high = max(p.psnr for p in every)
    margin = (psnr_high - psnr_low) * 0.1
    y_low, y_high, y_ticks = psnr_ticks(psnr_low - margin, psnr_high + margin)
    plot_right, plot_bottom = WIDTH - RIGHT, HEIGHT - BOTTOM

    def px(seconds: float) -> float:
        share = (math.log10(seconds) - math.log10(x_low)) / (math.log10(x_high) - math.log10(x_low))
        return LEFT + share * (plot_right - LEFT)

    def py(psnr: float) -> float:
        return plot_bottom - (psnr - y_low) / (y_high - y_low) * (plot_bottom - TOP)

    shapes: list[Shape] = [Text(WIDTH / 2, 22, title, size=16, anchor="middle", bold=True)]
    # Legend: one row between the title and the plot, so it never covers a point.
    legend_x = float(LEFT)
    for index, group in enumerate(series):
        colour, shape = COLOURS[index % len(COLOURS)], MARKERS[index % len(MARKERS)]
        shapes.append(Marker(legend_x + 6, 48, shape, colour))
        shapes.append(Text(legend_x + 16, 48, group.name, size=12))
        legend_x += 40 + _text_width(group.name, 12)
    for tick in x_ticks:
        x = px(tick)
        major = math.isclose(math.log10(tick), round(math.log10(tick)), abs_tol=1e-9)
        shapes.append(Line(x, TOP, x, plot_bottom, "#d0d0d0" if major else "#ececec", 1, True))
        shapes.append(Line(x, plot_bottom, x, plot_bottom + (6 if major else 3)))
        if major or len(x_ticks) <= 12:
            shapes.append(Text(x, plot_bottom + 17, format_seconds(tick), 11, "middle"))
    for tick in y_ticks:
        y = py(tick)
        shapes.append(Line(LEFT, y, plot_right, y, "#d0d0d0", 1, True))
        shapes.append(Line(LEFT - 6, y, LEFT, y))
        shapes.append(Text(LEFT - 9, y, f"{tick:g}", 11, "end"))
    shapes += [
        Line(LEFT, TOP, plot_right, TOP),
        Line(LEFT, plot_bottom, plot_right, plot_bottom),
        Line(LEFT, TOP, LEFT, plot_bottom),
        Line(plot_right, TOP, plot_right, plot_bottom),
        Text((LEFT + plot_right) / 2, HEIGHT - 14, "time per image (log scale)", anchor="middle"),
        Text(18, (TOP + plot_bottom) / 2, "PSNR (dB)", anchor="middle", vertical=True),
    ]
    # Labels keep clear of every marker and of the labels placed before them.
    placed: list[tuple[float, float, float, float]] = [
        (px(p.seconds) - 6, py(p.psnr) - 6, px(p.seconds) + 6, py(p.psnr) + 6) for p in points
    ]
    placed += [(LEFT, py(p.psnr) - 2, plot_right, py(p.psnr) + 2) for p in every if not p.seconds]
    for index, group in enumerate(series):
        colour, shape = COLOURS[index % len(COLOURS)], MARKERS[index % len(MARKERS)]
        for point in group.points:
            if point.seconds == 0:
                # A baseline that computes nothing: a reference line at its PSNR.
                y = py(point.psnr)
                shapes.append(Line(LEFT, y, plot_right, y, colour, 1.5, True))
                text = f"{point.label} ({point.psnr:.2f} dB)"
                shapes.append(Text(LEFT + 6, y - 9, text, 12, "start", colour))
                placed.append((LEFT, y - 17, LEFT + 12 + _text_width(text, 12), y - 1))
                continue
            x, y = px(point.seconds), py(point.psnr)
            shapes.append(Marker(x, y, shape, colour))
            shapes.append(_label(point.label, x, y, colour, placed, (LEFT, TOP, plot_right)))
    return shapes


def _label(
    text: str,
    x: float,
    y: float,
    colour: str,
    placed: list[tuple[float, float, float, float]],
    frame: tuple[float, float, float],
) -> Text:
    """A point's label beside it: right, left, then a row above or below on either side, the
    first place that overlaps no marker and no earlier label (else the plain right side)."""
    left_edge, top_edge, right_edge = frame
    width = _text_width(text, 12)
    candidates = [
        (side, dy) for dy in (0.0, 14.0, -14.0, 28.0, -28.0) for side in ("right", "left")
    ]

    def box(side: str, dy: float) -> tuple[float, float, float, float]:
        start = x + 9 if side == "right" else x - 9 - width
        return (start, y + dy - 8, start + width, y + dy + 8)

    def free(rect: tuple[float, float, float, float]) -> bool:
        inside = rect[0] >= left_edge and rect[2] <= right_edge and rect[1] >= top_edge
        return inside and not any(
            rect[0] < b[2] and b[0] < rect[2] and rect[1] < b[3] and b[1] < rect[3] for b in placed
        )

    side, dy = next(((s, d) for s, d in candidates if free(box(s, d))), ("right", 0.0))
    if side == "right" and box(side, dy)[2] > right_edge:
        side = "left"
    placed.append(box(side, dy))
    anchor_x = x + 9 if side == "right" else x - 9
    return Text(anchor_x, y + dy, text, 12, "start" if side == "right" else "end", colour)


def svg_document(shapes: Sequence[Shape]) -> str:
    """The shapes as a standalone SVG document."""
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans, Arial, sans-serif">',
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
    ]
    for shape in shapes:
        if isinstance(shape, Line):
            dash = ' stroke-dasharray="4 3"' if shape.dashed else ""
            out.append(
                f'<line x1="{shape.x1:.1f}" y1="{shape.y1:.1f}" x2="{shape.x2:.1f}" '
                f'y2="{shape.y2:.1f}" stroke="{shape.colour}" stroke-width="{shape.width}"'
                f"{dash}/>"
            )
        elif isinstance(shape, Marker):
            out.append(_svg_marker(shape))
        else:
            rotate = (
                f' transform="rotate(-90 {shape.x:.1f} {shape.y:.1f})"' if shape.vertical else ""
            )
            weight = ' font-weight="bold"' if shape.bold else ""
            out.append(
                f'<text x="{shape.x:.1f}" y="{shape.y:.1f}" font-size="{shape.size}" '
                f'text-anchor="{shape.anchor}" dominant-baseline="central" '
                f'fill="{shape.colour}"{weight}{rotate}>{escape(shape.text)}</text>'
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _polygon(marker: Marker) -> list[tuple[float, float]]:
    x, y, r = marker.x, marker.y, marker.radius
    if marker.shape == "diamond":
        r *= 1.3
        return [(x, y - r), (x + r, y), (x, y + r), (x - r, y)]
    if marker.shape == "triangle":
        r *= 1.2
        return [(x, y - r), (x + r, y + r * 0.8), (x - r, y + r * 0.8)]
    return [(x - r, y - r), (x + r, y - r), (x + r, y + r), (x - r, y + r)]


def _svg_marker(marker: Marker) -> str:
    if marker.shape == "circle":
        return (
            f'<circle cx="{marker.x:.1f}" cy="{marker.y:.1f}" r="{marker.radius}" '
            f'fill="{marker.colour}"/>'
        )
    corners = " ".join(f"{x:.1f},{y:.1f}" for x, y in _polygon(marker))
    return f"<polygon points={quoteattr(corners)} fill={quoteattr(marker.colour)}/>"


def paint_png(shapes: Sequence[Shape], path: Path) -> None:
    """Paint the shapes with Pillow into a PNG file at ``path`` (written as is, not atomic)."""
    from PIL import Image, ImageDraw

    scale = 2  # twice the SVG's size, so that the text stays readable
    image = Image.new("RGB", (WIDTH * scale, HEIGHT * scale), "white")
    draw = ImageDraw.Draw(image)
    for shape in shapes:
        if isinstance(shape, Line):
            _paint_line(draw, shape, scale)
        elif isinstance(shape, Marker):
            r = shape.radius * scale
            if shape.shape == "circle":
                x, y = shape.x * scale, shape.y * scale
                draw.ellipse((x - r, y - r, x + r, y + r), fill=shape.colour)
            else:
                draw.polygon([(x * scale, y * scale) for x, y in _polygon(shape)], shape.colour)
        else:
            _paint_text(image, draw, shape, scale)
    image.save(path, format="PNG")


def _paint_line(draw: Any, line: Line, scale: int) -> None:
    start = (line.x1 * scale, line.y1 * scale)
    end = (line.x2 * scale, line.y2 * scale)
    width = max(1, round(line.width * scale))
    if not line.dashed:
        draw.line((start, end), fill=line.colour, width=width)
        return
    length = math.hypot(end[0] - start[0], end[1] - start[1])
    dash, gap = 4 * scale, 3 * scale
    position = 0.0
    while position < length:
        a = position / length
        b = min(position + dash, length) / length
        draw.line(
            (
                (start[0] + (end[0] - start[0]) * a, start[1] + (end[1] - start[1]) * a),
                (start[0] + (end[0] - start[0]) * b, start[1] + (end[1] - start[1]) * b),
            ),
            fill=line.colour,
            width=width,
        )
        position += dash + gap


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return ImageFont.load_default()


def _paint_text(image: Any, draw: Any, text: Text, scale: int) -> None:
    from PIL import Image, ImageDraw

    font = _font(text.size * scale)
    anchor = {"start": "lm", "middle": "mm", "end": "rm"}[text.anchor]
    x, y = text.x * scale, text.y * scale
    if not text.vertical:
        draw.text((x, y), text.text, fill=text.colour, font=font, anchor=anchor)
        if text.bold:  # the default font has no bold face: draw it twice, one pixel apart
            draw.text((x + 1, y), text.text, fill=text.colour, font=font, anchor=anchor)
        return
    left, top, right, bottom = draw.textbbox((0, 0), text.text, font=font, anchor="lt")
    label = Image.new("RGBA", (right - left + 2, bottom - top + 2), (255, 255, 255, 0))
    ImageDraw.Draw(label).text((-left, -top), text.text, fill=text.colour, font=font)
    label = label.rotate(90, expand=True)
    image.paste(label, (round(x - label.width / 2), round(y - label.height / 2)), label)


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
        png: also paint a PNG here.

    Returns:
        The files written.
    """
    series = [Series(name, tuple(points))] if points else []
    if paper:
        series.append(PAPER_SERIES)
    shapes = chart_shapes(series, title=title)
    written = []
    with atomic_path(path) as tmp:
        tmp.write_text(svg_document(shapes), encoding="utf-8")
    written.append(Path(path))
    if png is not None:
        with atomic_path(png) as tmp:
            paint_png(shapes, tmp)
        written.append(Path(png))
    return written
