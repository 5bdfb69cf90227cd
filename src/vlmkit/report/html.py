"""Small builders for self-contained HTML report pages."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

_STYLE = """
body{font-family:system-ui,-apple-system,sans-serif;margin:2rem auto;max-width:72rem;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}th{background:#f5f5f5}
td:first-child,th:first-child{text-align:left}.muted{color:#777;font-size:.85rem}
.heat td{min-width:2rem;text-align:center}
.grid td{vertical-align:top;text-align:left;font-size:.78rem;min-width:7rem}
details{margin:.3rem 0}summary{cursor:pointer}
"""

# following a link to a collapsed <details> block opens it
_OPEN_TARGET = (
    "<script>function openTarget(){var e=document.getElementById(location.hash.slice(1));"
    "if(e&&e.tagName==='DETAILS'){e.open=true;e.scrollIntoView();}}"
    "window.addEventListener('hashchange',openTarget);openTarget();</script>"
)


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return escape(str(value))


def table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def key_values(items: dict) -> str:
    return table(["", ""], [(k, v) for k, v in items.items()])


def heatmap(matrix: Sequence[Sequence[float]], row_labels: Sequence[str], col_labels: Sequence[str], caption: str = "") -> str:
    """A table whose cells are shaded by value (row-normalised), e.g. a confusion matrix."""
    head = "<th></th>" + "".join(f"<th>{escape(str(c))}</th>" for c in col_labels)
    rows = []
    for label, row in zip(row_labels, matrix, strict=True):
        total = max(sum(row), 1)
        cells = "".join(
            f'<td style="background:rgba(31,119,180,{0.85 * v / total:.3f})">{fmt(v)}</td>' for v in row
        )
        rows.append(f"<tr><th>{escape(str(label))}</th>{cells}</tr>")
    cap = f"<caption class='muted'>{escape(caption)}</caption>" if caption else ""
    return f"<table class='heat'>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def sparkline(values: Sequence[float], width: int = 110, height: int = 28) -> str:
    """An inline SVG polyline of ``values`` (e.g. a singular-value spectrum), scaled to its maximum."""
    top = max(max(values, default=0.0), 1e-12)
    step = width / max(len(values) - 1, 1)
    points = " ".join(f"{i * step:.1f},{height - height * v / top:.1f}" for i, v in enumerate(values))
    return (f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}'>"
            f"<polyline fill='none' stroke='#1f77b4' stroke-width='1.2' points='{points}'/></svg>")


def bars(labels: Sequence[str], values: Sequence[float], errors: Sequence[float] | None = None, width: int = 360, caption: str = "") -> str:
    """A horizontal SVG bar chart with optional error bars (e.g. mean and 95% interval per method)."""
    top = max([v + (e if errors else 0) for v, e in zip(values, errors or [0] * len(values), strict=True)] + [1e-12])
    row, label_w = 22, 110
    parts = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y, w = i * row + 4, (width - label_w - 60) * max(value, 0) / top
        parts.append(f"<text x='0' y='{y + 13}' font-size='12'>{escape(str(label))}</text>"
                     f"<rect x='{label_w}' y='{y}' width='{w:.1f}' height='14' fill='#1f77b4'/>"
                     f"<text x='{label_w + w + 4:.1f}' y='{y + 12}' font-size='11'>{value:.3f}</text>")
        if errors:
            scale = (width - label_w - 60) / top
            lo, hi = label_w + (value - errors[i]) * scale, label_w + (value + errors[i]) * scale
            parts.append(f"<line x1='{lo:.1f}' x2='{hi:.1f}' y1='{y + 7}' y2='{y + 7}' stroke='#333'/>")
    cap = f"<div class='muted'>{escape(caption)}</div>" if caption else ""
    return f"{cap}<svg width='{width}' height='{len(labels) * row + 8}'>{''.join(parts)}</svg>"


def details(summary: str, *blocks: str, anchor: str = "") -> str:
    """A collapsed block: ``summary`` shown, ``blocks`` revealed on click."""
    ident = f" id='{escape(anchor)}'" if anchor else ""
    return f"<details{ident}><summary>{escape(summary)}</summary>{''.join(blocks)}</details>"


def section(title: str, *blocks: str) -> str:
    return f"<h2>{escape(title)}</h2>" + "".join(blocks)


def page(title: str, *blocks: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{''.join(blocks)}{_OPEN_TARGET}</body></html>\n"
    )
