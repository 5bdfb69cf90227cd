"""``report.html`` of ``vlmkit c2b run``: the ranking, and per discovered bias the retrieved
images of each bias class with the classifier's predictions (thumbnails embedded in the page)."""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from html import escape

from vlmkit.report import html

THUMB = 64
PER_CELL = 6
TOP_ATTRIBUTES = 3


@lru_cache(maxsize=4096)
def _thumbnail(path: str) -> str:
    """An inline JPEG thumbnail (an image shown in several cells is encoded once)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((THUMB, THUMB))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=80)
    except OSError:
        return "<span class='muted'>unreadable</span>"
    return f"<img src='data:image/jpeg;base64,{base64.b64encode(buffer.getvalue()).decode()}' width='{THUMB}' height='{THUMB}'>"


def _cell(paths: list[str], predictions: list[str], target: str) -> str:
    items = []
    for path, predicted in list(zip(paths, predictions, strict=True))[:PER_CELL]:
        colour = "#2ca02c" if predicted == target else "#d62728"
        items.append(f"<figure style='display:inline-block;margin:2px;border:2px solid {colour}'>{_thumbnail(path)}"
                     f"<figcaption style='font-size:.7rem'>{escape(predicted)}</figcaption></figure>")
    return "".join(items)


def _bias_grid(summary: dict, attribute: str, target: str) -> str:
    rows = [g for g in summary["groups"] if g["attribute"] == attribute and g["target"] == target]
    stats = {(r["target"], r["name"]): r for e in summary["ranking"] if e["attribute"] == attribute for r in e["classes"]}
    body = []
    for group in rows:
        row = stats.get((target, group["bias"]), {})
        phi = "-" if row.get("phi") is None else f"{row['phi']:+.3f}"
        acc = "-" if group["accuracy"] is None else f"{group['accuracy']:.2f}"
        body.append(
            f"<tr><td>{escape(group['bias'])}<br><span class='muted'>phi {phi}, accuracy {acc}, n {group['n']}<br>"
            f"&ldquo;{escape(group['caption'])}&rdquo;</span></td><td>{_cell(group['paths'], group['predictions'], target)}</td></tr>"
        )
    return f"<table class='grid'><tbody>{''.join(body)}</tbody></table>"


def _ranking_table(ranking: list[dict], level: float) -> str:
    rows = []
    for e in ranking:
        interval = "-" if e["interval"] is None else f"[{e['interval'][0]:.3f}, {e['interval'][1]:.3f}]"
        detected = sum(bool(r["detected"]) for r in e["classes"])
        rows.append((e["attribute"], "-" if e["score"] is None else e["score"], interval, e["targets"], detected))
    return html.table(
        ["attribute", "score (mean over targets of max |phi|)", f"{level:.0%} interval (basic)", "targets", "detected rows"], rows
    )


def _evaluation(evaluation: dict) -> str:
    keys = ("hit", "false_hit", "miss", "detected", "ground_truth", "precision", "recall")
    agreement = evaluation["agreement"]
    return html.section(
        "Against annotations",
        html.key_values(
            {
                "annotations": evaluation["annotations"],
                "images": evaluation["images"],
                **{k: evaluation[k] for k in keys},
                "rows scored by both": agreement["rows"],
                "sign agreement": agreement["sign_agreement"],
                "Pearson r (phi vs Delta)": agreement["pearson"],
            }
        ),
        html.details(
            "ground-truth biases",
            html.table(
                ["target", "attribute", "value", "Delta"],
                [(g["target"], g["attribute"], g["bias"], g["phi"]) for g in evaluation["ground_truth_biases"]],
            ),
        ),
    )


def page(summary: dict) -> str:
    """The whole report page of one run."""
    blocks = [
        html.key_values(
            {
                "task": summary["task"],
                "classifier": summary["classifier"],
                "proposals from": summary["proposal_source"],
                "caption template": f"{summary['template']} ({summary['template_source']})",
                "images per caption": summary["k"],
            }
        )
    ]
    if summary["proposal_failures"]:
        blocks.append(html.section("Proposal failures", html.table(["class", "why"], list(summary["proposal_failures"].items()))))
    blocks.append(html.section("Attribute ranking", _ranking_table(summary["ranking"], summary["settings"]["level"])))
    for entry in summary["ranking"][:TOP_ATTRIBUTES]:
        if entry["score"] is None:
            continue
        detected_targets = sorted({r["target"] for r in entry["classes"] if r["detected"]})
        strongest = next((r["target"] for r in entry["classes"] if r["phi"] is not None), None)
        targets = detected_targets or ([strongest] if strongest else [])
        grids = [
            html.details(f"{entry['attribute']} for {t}", _bias_grid(summary, entry["attribute"], t), anchor=f"{entry['attribute']}-{t}")
            for t in targets
        ]
        blocks.append(
            html.section(
                f"{entry['attribute']}: score {entry['score']:.3f}",
                "<p class='muted'>green: predicted the target; red: did not</p>",
                *grids,
            )
        )
    if "evaluation" in summary:
        blocks.append(_evaluation(summary["evaluation"]))
    if "retrieval_precision" in summary:
        blocks.append(html.section("Retrieval precision", html.key_values(summary["retrieval_precision"])))
    blocks.append(
        html.section(
            "Proposals",
            html.table(
                ["class", "attribute", "bias classes"],
                [(t, a, ", ".join(c)) for t, p in summary["proposals"].items() for a, c in p.items()],
            ),
        )
    )
    return html.page(f"C2B: biases of {summary['classifier']}", *blocks)
