"""Report pages: charts drawn by matplotlib as inline SVG, deterministic, one self-contained file."""

import re

import numpy as np
import pytest

from vlmkit.report import html, plots


def _external_references(page: str) -> list[str]:
    """``src``/``href`` attributes that would fetch something (namespaces and anchors are fine)."""
    refs = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page)
    return [r for r in refs if not r.startswith(("#", "data:"))]


@pytest.mark.parametrize("chart", [
    lambda: plots.bars(["a", "b", "c"], [0.2, 0.5, 0.9], [0.05, 0.1, 0.02], caption="bars"),
    lambda: plots.grouped_bars(["x", "y"], {"m1": [0.1, 0.2], "m2": [0.3, 0.4]}),
    lambda: plots.lines({"h0": [3.0, 2.0, 1.0], "h1": [2.5, 1.5, 0.2]}, log_y=True),
    lambda: plots.scatter([0, 1, 2], [1, 0, 2], groups=["a", "b", "a"]),
    lambda: plots.scatter([0, 1, 2], [1, 0, 2], shade=[0, 5, 11], shade_label="layer"),
    lambda: plots.lines({"l0": [3.0, 2.0], "l1": [2.5, 1.5], "l2": [2.0, 1.0]}, shade=[0, 1, 2], shade_label="layer"),
    lambda: plots.pr_curves({"m": ([0.0, 0.5, 1.0], [1.0, 1.0, 0.5])}),
    lambda: html.sparkline([5.0, 3.0, 1.0]),
])
def test_charts_are_inline_svg_and_deterministic(chart):
    first, second = chart(), chart()
    assert first == second
    assert "<svg" in first and "<?xml" not in first and "<!DOCTYPE" not in first
    assert not _external_references(first)


def test_text_stays_text_in_the_svg():
    svg = plots.bars(["circle", "square"], [0.25, 0.75])
    assert "circle" in svg and "0.750" in svg  # svg.fonttype none: labels are <text>, not glyph paths


def test_shaded_charts_have_a_colour_bar_instead_of_a_legend_and_many_points_are_one_raster():
    gen = np.random.default_rng(0)
    few = plots.scatter(gen.random(50), gen.random(50), shade=np.arange(50) % 24, shade_label="layer")
    many = plots.scatter(gen.random(5000), gen.random(5000), shade=np.arange(5000) % 24, shade_label="layer")
    for svg in (few, many):
        assert ">layer<" in svg and 'id="legend' not in svg  # the colour bar's label; no legend
    # past RASTER_POINTS the markers are one embedded image, not 5,000 paths
    assert many.count("<image") - few.count("<image") == 1
    with pytest.raises(ValueError, match="shade"):
        plots.lines({"a": [1.0], "b": [2.0]}, shade=[0])
    with pytest.raises(ValueError, match="not both"):
        plots.scatter([0, 1], [1, 0], groups=["a", "b"], shade=[0, 1])
    plots.lines({"only": [3.0, 1.0]}, shade=[5], shade_label="layer")  # one value: a colour bar all the same


def test_precision_recall_by_hand():
    scores = np.array([[0.9, 0.1], [0.8, 0.7], [0.2, 0.3]])
    labels = np.array([[1, 0], [0, -1], [1, 1]])  # -1 is unknown and skipped
    recall, precision = plots.precision_recall(scores, labels)
    # ranked known pairs: 0.9 (pos), 0.8 (neg), 0.3 (pos), 0.2 (pos), 0.1 (neg)
    assert np.allclose(precision, [1, 1 / 2, 2 / 3, 3 / 4, 3 / 5]) and np.allclose(recall, [1 / 3, 1 / 3, 2 / 3, 1, 1])


def test_thumbnails_are_inlined_and_unreadable_files_do_not_break_the_page(tmp_path):
    from PIL import Image

    Image.new("RGB", (300, 200), (10, 200, 30)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"junk")
    strip = plots.thumbnails([(tmp_path / "a.png", "a green thing"), (tmp_path / "b.png", "broken")])
    assert strip.count("data:image/png;base64,") == 1 and "unreadable: b.png" in strip and "a green thing" in strip
    page = html.page("t", strip)
    assert not _external_references(page)


def test_sith_report_shows_spectra_and_a_fidelity_scatter(tmp_path):
    from vlmkit.cli.main import main

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(f"word{i}" for i in range(30)))
    main(["sith", "--model", "random:clip-tiny", "--layers", "all", "--vocab", str(vocab), "--k", "2", "--image-mean", "none",
          "--no-coherence", "--out", str(tmp_path / "s")])
    page = (tmp_path / "s" / "report.html").read_text()
    assert page.count("<svg") == 2 + 1  # one spectrum chart per layer, one scatter
    assert "singular values of each head" in page and "fidelity of each head" in page
    assert not _external_references(page)
