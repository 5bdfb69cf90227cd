"""Small builders for self-contained HTML report pages; charts come from :mod:`vlmkit.report.plots`
(matplotlib, inlined SVG) and images are inlined, so a page opens offline as one file."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from vlmkit.report import plots

_STYLE = """
body{font-family:system-ui,-apple-system,sans-serif;margin:2rem auto;max-width:72rem;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}th{background:#f5f5f5}
td:first-child,th:first-child{text-align:left}.muted{color:#777;font-size:.85rem}
.heat td{min-width:2rem;text-align:center}
.grid td{vertical-align:top;text-align:left;font-size:.78rem;min-width:7rem}
details{margin:.3rem 0}summary{cursor:pointer}
figure{margin:.5rem 0}figure svg{max-width:100%;height:auto}
.thumbs{display:flex;flex-wrap:wrap;gap:.4rem}.thumb{margin:0;font-size:.7rem;max-width:7rem;text-align:center}
.thumb img{display:block;margin:auto}
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


def sparkline(values: Sequence[float], width: int = 110, height: int = 28, caption: str = "", xlabel: str = "", ylabel: str = "") -> str:
    """A line chart of ``values`` (a singular-value spectrum, a training curve), ``width`` x
    ``height`` pixels, drawn by :func:`vlmkit.report.plots.lines`."""
    return plots.lines({"": values}, caption=caption, xlabel=xlabel, ylabel=ylabel, width=width / 100, height=height / 100, legend=False)


def bars(labels: Sequence[str], values: Sequence[float], errors: Sequence[float] | None = None, width: int = 360, caption: str = "") -> str:
    """Horizontal bars with optional error bars (e.g. mean and 95% interval per method), drawn by
    :func:`vlmkit.report.plots.bars`; ``width`` in pixels."""
    return plots.bars(labels, values, errors, caption=caption, width=max(width, 300) / 100 + 1.5)


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
