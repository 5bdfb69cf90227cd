"""HTML reports of open-world runs: metric tables per dataset and group, an image gallery with
each prediction and label coloured by its scores, and Elo tables."""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path

from vlmkit.classify.openworld import METRICS
from vlmkit.report import html

LABELS = {"ti": "TI", "li": "LI", "ss": "SS", "cs_max": "bCS", "cs_median": "mCS", "em": "EM"}
THUMB = 96


def thumbnail(path: str | Path) -> str:
    """An inline PNG thumbnail, or an empty cell when the image cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((THUMB, THUMB))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
    except OSError:
        return ""
    return f"<img src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}'>"


def metric_tables(block: dict) -> str:
    names = [k for k in METRICS if k in block["metrics"]]
    head = [LABELS[k] for k in names]
    datasets = [(d, v["group"], v["n"], *[v[k] for k in names]) for d, v in block["per_dataset"].items()]
    groups = [(g, ", ".join(v["datasets"]), *[v[k] for k in names]) for g, v in block["per_group"].items()]
    return (html.key_values({LABELS[k]: block["metrics"][k] for k in names})
            + html.section("Per group (mean of its datasets)", html.table(["group", "datasets", *head], groups))
            + html.section("Per dataset", html.table(["dataset", "group", "n", *head], datasets)))


def _colour(scores: dict) -> str:
    """Green when the label is in the answer (TI), else shaded from red to amber by SS."""
    if scores.get("ti", 0) >= 1:
        return "#c8ecc8"
    ss = max(0.0, min(1.0, float(scores.get("ss", 0.0))))
    return f"hsl({int(5 + 40 * ss)},80%,{int(82 + 8 * ss)}%)"


def gallery(rows: list[dict], limit: int = 60) -> str:
    """Image cells with prediction, label and scores; rows carry ``path``, ``prediction``,
    ``label`` and the metric values."""
    cells = []
    for row in rows[:limit]:
        scores = " ".join(f"{LABELS[k]} {row[k]:.2f}" for k in METRICS if k in row and k != "em")
        cells.append(
            "<div style='display:inline-block;width:13rem;vertical-align:top;margin:.2rem;padding:.3rem;"
            f"background:{_colour(row)};font-size:.78rem'>"
            f"{thumbnail(row['path'])}<br><b>{escape(row['label'])}</b><br>{escape(row['prediction'][:160])}<br>"
            f"<span class='muted'>{escape(scores)}</span></div>"
        )
    note = (
        f"<p class='muted'>first {min(limit, len(rows))} of {len(rows)} images; "
        "green: label included (TI = 1), red to amber: low to high SS</p>"
    )
    return note + "".join(cells)


def elo_tables(elo: dict) -> str:
    blocks = []
    for dataset, entry in elo.items():
        ratings = sorted(entry["ratings"].items(), key=lambda kv: -kv[1]["median"])
        rows = [(m, r["online"], r["mean"], r["median"], f"[{r['low']:.0f}, {r['high']:.0f}]") for m, r in ratings]
        blocks.append(html.section(f"Elo on {dataset} ({entry['games']} games over {entry['items']} items)",
                                   html.table(["model", "online", "mean", "median", "95% interval"], rows)))
    return "".join(blocks)


def score_report(result: dict) -> str:
    parts = []
    for name, block in result["models"].items():
        parts.append(html.section(f"Model {name}", metric_tables(block)))
    if result.get("elo"):
        parts.append(elo_tables(result["elo"]))
        parts.append(f"<p class='muted'>Elo criterion: {escape(result['elo_criterion'])}</p>")
    if result.get("li_prompt"):
        parts.append(html.section("LI judge prompt", f"<pre>{escape(result['li_prompt'])}</pre>"))
    return html.page("Open-world metrics", *parts)


def run_report(result: dict, rows: list[dict]) -> str:
    return html.page(
        f"Open-world classification: {result['model']} on {result['dataset']} ({result['prompt']})",
        html.key_values(
            {
                "model": result["model"],
                "dataset": result["dataset"],
                "prompt": result["prompt"],
                "question": result["question"],
                "images": result["n"],
            }
        ),
        html.section("Metrics", metric_tables(result)),
        html.section("Gallery", gallery(rows)),
    )
