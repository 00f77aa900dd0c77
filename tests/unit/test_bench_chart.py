"""``amsnet.studies.bench.chart``: reading results files, clear errors, SVG and PNG output."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

import pytest
from PIL import Image

pytest.importorskip("matplotlib", reason="amsnet[plot] is not installed")

from amsnet.errors import DataError
from amsnet.studies.bench.chart import draw_chart, PAPER_SERIES, read_points, Series, write_chart

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def results_csv(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text(
        "label,psnr,ms_per_image\nAMSNet (UNet) B,36.2,1443\nAP-BSN <R3> & co,35.1,2431.5\n"
    )
    return path


def svg_texts(path):
    root = ElementTree.parse(path).getroot()
    return ["".join(element.itertext()) for element in root.iter(f"{SVG}text")]


def test_csv_in_milliseconds_is_read_in_seconds(results_csv):
    points = read_points(results_csv)
    assert [p.label for p in points] == ["AMSNet (UNet) B", "AP-BSN <R3> & co"]
    assert points[0].seconds == pytest.approx(1.443)
    assert points[1].psnr == pytest.approx(35.1)


def test_json_lists_and_results_objects_with_chosen_fields(tmp_path):
    records = [{"name": "a", "db": 30, "seconds_per_image": 0.5, "time": 2}]
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps(records))
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"environment": {}, "results": records}))
    for path in (listed, wrapped):
        (point,) = read_points(path, y_field="db", label_field="name")
        assert (point.label, point.seconds, point.psnr) == ("a", 0.5, 30.0)
    (point,) = read_points(listed, x_field="time", y_field="db", label_field="name")
    assert point.seconds == 2.0
    (point,) = read_points(listed, x_field="time", x_unit="ms", y_field="db", label_field="name")
    assert point.seconds == 0.002


def test_svg_parses_and_holds_title_labels_ticks_and_the_paper_series(tmp_path, results_csv):
    out = tmp_path / "chart.svg"
    write_chart(read_points(results_csv), out, title="Fig. 5 & us", name="cpu", paper=True)
    texts = svg_texts(out)
    assert "Fig. 5 & us" in texts
    assert {"AMSNet (UNet) B", "AP-BSN <R3> & co", "cpu", PAPER_SERIES.name} <= set(texts)
    assert {point.label for point in PAPER_SERIES.points} <= set(texts)
    assert {"100 ms", "1 s", "PSNR (dB)"} <= set(texts)
    # Written atomically: no temporary file is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chart.svg", "results.csv"]


def test_png_is_painted_at_twice_the_svg_size(tmp_path, results_csv):
    png = tmp_path / "chart.png"
    written = write_chart(read_points(results_csv), tmp_path / "chart.svg", png=png)
    assert written == [tmp_path / "chart.svg", png]
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size == (1520, 1000)
        # Not blank: the points are painted in colour.
        assert len(image.convert("RGB").getcolors(1 << 20)) > 10


def _label_boxes(figure, text):
    renderer = figure.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in figure.axes[0].texts if t.get_text() == text]


def test_every_point_and_label_lies_inside_the_axes():
    figure = draw_chart([PAPER_SERIES], title="t")
    axes = figure.axes[0]
    low, high = axes.get_xlim()
    assert low <= 0.038 and high >= 1.802  # whole decades around the times
    frame = axes.get_window_extent(figure.canvas.get_renderer())
    for point in PAPER_SERIES.points:
        (box,) = _label_boxes(figure, point.label)
        assert frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
    one = draw_chart([Series("s", (PAPER_SERIES.points[0],))], title="t")
    y_low, y_high = one.axes[0].get_ylim()  # one value: the axis still has a span
    assert y_low < PAPER_SERIES.points[0].psnr < y_high


def test_labels_of_close_points_do_not_overlap():
    point = PAPER_SERIES.points[0]
    figure = draw_chart([Series("t", (point, point, point))], title="t")
    boxes = _label_boxes(figure, point.label)
    assert len(boxes) == 3
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_a_zero_time_baseline_is_a_reference_line(tmp_path):
    path = tmp_path / "summary.csv"
    path.write_text("label,psnr,seconds_per_image\nnoisy input,36.1,0\nAMSNet,37.0,0.2\n")
    figure = draw_chart([Series("s", tuple(read_points(path)))], title="t")
    axes = figure.axes[0]
    (line,) = [line for line in axes.get_lines() if line.get_linestyle() == "--"]
    assert list(line.get_ydata()) == [36.1, 36.1]
    assert "noisy input (36.10 dB)" in [t.get_text() for t in axes.texts]
    assert sum(len(c.get_offsets()) for c in axes.collections) == 1  # AMSNet only


def test_a_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: no such results file"):
        read_points(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("label,psnr\na,30\n", {}, r"results\.csv: no time field.*--x-field"),
        ("label,ms_per_image\na,3\n", {}, r"results\.csv: record 1 \('a'\): field 'psnr' is miss"),
        ("label,psnr,ms_per_image\na,,3\n", {}, r"record 1 \('a'\): field 'psnr' is empty"),
        ("label,psnr,ms_per_image\na,high,3\n", {}, r"field 'psnr' is 'high', not a number"),
        ("label,psnr,ms_per_image\na,30,-1\n", {}, r"'ms_per_image' is '-1'; times cannot be neg"),
        ("label,psnr,ms_per_image\na,nan,3\n", {}, r"'psnr' is 'nan', not a finite number"),
        ("name,psnr,ms_per_image\na,30,3\n", {}, r"record 1: field 'label' is missing.*--label"),
        ("label,psnr,t\na,30,3\n", {"x_field": "time"}, r"field 'time' is missing.*'t'"),
        ("label,psnr,ms_per_image\n", {}, r"results\.csv: holds no records"),
    ],
)
def test_bad_csv_contents_name_the_file_record_and_field(tmp_path, text, options, message):
    path = tmp_path / "results.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_points(path, **options)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("r.json", "{not json", r"r\.json: not valid JSON"),
        ("r.json", '{"rows": 3}', r"r\.json: expected a list of records"),
        ("r.json", "[1, 2]", r"r\.json: expected a list of records"),
        ("r.txt", "label,psnr", r"r\.txt: results must be a \.csv or \.json file"),
    ],
)
def test_bad_files_name_the_file_and_the_fix(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_points(path)


def test_no_points_at_all_is_an_error(tmp_path):
    with pytest.raises(DataError, match="nothing to chart"):
        write_chart([], tmp_path / "chart.svg")
    assert not (tmp_path / "chart.svg").exists()
