"""Charts and image strips for report pages, drawn with matplotlib and inlined.

Every chart is rendered offline (Agg/SVG backends, no pyplot state) to an inline ``<svg>``
element, deterministically: a fixed ``svg.hashsalt`` for element ids, text kept as text
(``svg.fonttype = "none"``) and no date in the metadata, so the same data gives the same bytes.
Images are inlined as base64 PNG, so a report stays one self-contained file.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

import numpy as np

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
SHADE_MAP = "viridis"  # the sequential colour map of shaded charts
RASTER_POINTS = 2000  # a shaded scatter of more points is drawn as one embedded PNG (each SVG marker costs ~0.1 ms)
_RC = {
    "svg.hashsalt": "vlmkit", "svg.fonttype": "none", "font.size": 8, "font.family": "sans-serif",
    "axes.spines.top": False, "axes.spines.right": False, "axes.titlesize": 9, "legend.fontsize": 7, "legend.frameon": False,
}


def _figure(width: float, height: float, compact: bool = False):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout=None if compact else "constrained")
    if compact:
        fig.subplots_adjust(0.02, 0.04, 0.98, 0.96)
    return fig


def to_svg(fig) -> str:
    """The figure as an inline ``<svg>`` element (no XML prologue), deterministic bytes."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):].strip()


def _caption(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption class='muted'>{escape(caption)}</figcaption></figure>" if caption else f"<figure>{svg}</figure>"


def _draw(width: float, height: float, paint, compact: bool = False) -> str:
    """Make a figure inside the rc context (so fonts and ids follow it), let ``paint(ax)`` draw;
    ``compact`` drops the axes (a sparkline)."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig = _figure(width, height, compact)
        ax = fig.add_subplot()
        paint(ax)
        if compact:
            ax.set_axis_off()
        return to_svg(fig)


def bars(labels: Sequence[str], values: Sequence[float], errors: Sequence[float] | None = None, *, caption: str = "",
         xlabel: str = "", width: float = 5.0) -> str:
    """Horizontal bars with optional symmetric error bars (e.g. mean and 95% interval), values printed."""
    values = [float(v) for v in values]

    def paint(ax):
        y = np.arange(len(labels))
        ax.barh(y, values, xerr=None if errors is None else [float(e) for e in errors], color=COLOURS[0], capsize=2,
                error_kw={"elinewidth": 0.8, "ecolor": "#333"})
        ax.set_yticks(y, [str(label) for label in labels])
        ax.invert_yaxis()
        for i, value in enumerate(values):
            ax.annotate(f"{value:.3f}", (value, i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
        ax.set_xlabel(xlabel)
        ax.margins(x=0.15)

    return _caption(_draw(width, 0.6 + 0.22 * len(labels), paint), caption)


def grouped_bars(labels: Sequence[str], series: Mapping[str, Sequence[float]], *, caption: str = "", ylabel: str = "",
                 width: float = 7.0) -> str:
    """Vertical bars, one group per label and one colour per series (e.g. AP per attribute per method)."""

    def paint(ax):
        x = np.arange(len(labels))
        step = 0.8 / max(len(series), 1)
        for i, (name, values) in enumerate(series.items()):
            ax.bar(x + (i - (len(series) - 1) / 2) * step, [float(v) for v in values], step, label=name, color=COLOURS[i % len(COLOURS)])
        ax.set_xticks(x, [str(label) for label in labels], rotation=60 if len(labels) > 8 else 0,
                      ha="right" if len(labels) > 8 else "center")
        ax.set_ylabel(ylabel)
        ax.legend(ncols=min(len(series), 3), loc="upper left", bbox_to_anchor=(0, 1.15))

    return _caption(_draw(width, 2.8, paint), caption)


def _colourbar(ax, mappable, label: str) -> None:
    bar = ax.figure.colorbar(mappable, ax=ax, pad=0.02, fraction=0.05)
    bar.set_label(label)


def lines(series: Mapping[str, Sequence[float]], *, x: Sequence[float] | None = None, caption: str = "", xlabel: str = "",
          ylabel: str = "", log_y: bool = False, width: float = 5.0, height: float = 2.4, legend: bool = True,
          shade: Sequence[float] | None = None, shade_label: str = "") -> str:
    """One line per series (spectra, training curves); ``x`` defaults to 0, 1, 2, ...

    ``shade``: one number per series (e.g. its layer); the lines then take their colours from a
    sequential colour map with a colour bar labelled ``shade_label`` instead of a legend, which
    stays readable for dozens of ordered series (a legend's ten colours repeat)."""

    if shade is not None and len(shade) != len(series):
        raise ValueError(f"shade gives {len(shade)} numbers for {len(series)} series")

    def paint(ax):
        scale = _shade_scale(shade) if shade is not None else None
        colours = scale.to_rgba(np.asarray(shade, float)) if scale is not None else None
        for i, (name, values) in enumerate(series.items()):
            xs = np.arange(len(values)) if x is None else np.asarray(x, float)
            colour = colours[i] if colours is not None else COLOURS[i % len(COLOURS)]
            ax.plot(xs, [float(v) for v in values], label=name, color=colour, linewidth=1.1)
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if scale is not None:
            _colourbar(ax, scale, shade_label)
        elif legend and len(series) > 1:
            ax.legend(ncols=min(len(series), 4))

    return _caption(_draw(width, height, paint, compact=height < 1.0), caption)


def _shade_scale(values: Sequence[float]):
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    values = np.asarray(values, float)
    return ScalarMappable(Normalize(values.min(), values.max()), SHADE_MAP)  # matplotlib widens a zero range itself


def scatter(x: Sequence[float], y: Sequence[float], *, groups: Sequence[str] | None = None, caption: str = "", xlabel: str = "",
            ylabel: str = "", width: float = 4.5, height: float = 3.2, shade: Sequence[float] | None = None,
            shade_label: str = "") -> str:
    """A scatter plot, coloured by ``groups`` (a legend) or by ``shade`` (one number per point,
    e.g. its layer: a sequential colour map with a colour bar labelled ``shade_label``, one
    collection however many values)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if shade is not None and (groups is not None or len(shade) != len(x)):
        raise ValueError("give shade (one number per point) or groups, not both" if groups is not None
                         else f"shade gives {len(shade)} numbers for {len(x)} points")

    def paint(ax):
        if shade is not None:
            points = ax.scatter(x, y, s=8, alpha=0.7, c=np.asarray(shade, float), cmap=SHADE_MAP, linewidths=0,
                                rasterized=len(x) > RASTER_POINTS)
            _colourbar(ax, points, shade_label)
        else:
            names = sorted(set(groups)) if groups is not None else [""]
            for i, name in enumerate(names):
                mask = np.ones(len(x), bool) if groups is None else np.asarray([g == name for g in groups])
                ax.scatter(x[mask], y[mask], s=8, alpha=0.7, color=COLOURS[i % len(COLOURS)], label=name or None, linewidths=0)
            if groups is not None and len(names) > 1:
                ax.legend(markerscale=2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)

    return _caption(_draw(width, height, paint), caption)


def precision_recall(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Micro-averaged precision-recall points over all (sample, class) pairs whose label is 0 or 1
    (``-1`` = unknown is skipped). scores, labels ``(n, A)`` -> (recall, precision)."""
    known = labels >= 0
    s, t = np.asarray(scores, float)[known], labels[known] == 1
    order = np.argsort(-s, kind="stable")
    hits = np.cumsum(t[order])
    precision = hits / np.arange(1, len(hits) + 1)
    recall = hits / max(int(t.sum()), 1)
    return recall, precision


def pr_curves(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, caption: str = "", width: float = 4.5) -> str:
    """Precision-recall curves, one per method: ``{name: (recall, precision)}``."""

    def paint(ax):
        for i, (name, (recall, precision)) in enumerate(curves.items()):
            ax.step(recall, precision, where="post", label=name, color=COLOURS[i % len(COLOURS)], linewidth=1.1)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.legend()

    return _caption(_draw(width, 3.2, paint), caption)


def thumbnail(path: str | Path, size: int = 96) -> str | None:
    """An ``<img>`` with the image inlined as base64 PNG, at most ``size`` pixels a side; ``None``
    when the file cannot be read (a report never fails on a picture)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.thumbnail((size, size))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="PNG", optimize=True)
    except (OSError, ValueError, SyntaxError):
        return None
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img src='data:image/png;base64,{data}' alt='{escape(Path(path).name)}' title='{escape(str(path))}'>"


def thumbnails(items: Sequence[tuple[str | Path, str]], size: int = 96, caption: str = "") -> str:
    """A strip of inlined thumbnails with a caption under each: ``[(path, caption), ...]``."""
    cells = []
    for path, text in items:
        image = thumbnail(path, size) or f"<div class='muted'>unreadable: {escape(Path(path).name)}</div>"
        cells.append(f"<figure class='thumb'>{image}<figcaption>{escape(str(text))}</figcaption></figure>")
    head = f"<div class='muted'>{escape(caption)}</div>" if caption else ""
    return f"{head}<div class='thumbs'>{''.join(cells)}</div>"
