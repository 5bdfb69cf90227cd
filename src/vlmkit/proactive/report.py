"""``report.html`` of a ProactiveBench run: metrics per scenario and episodes replayed turn by turn."""

from __future__ import annotations

import base64
import io
from html import escape

from vlmkit.report import html
from vlmkit.report.plots import grouped_bars


def _img(image) -> str:
    if image is None:
        return "<div class='muted'>(no frame kept)</div>"
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG", optimize=True)
    return f"<img src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}'>"


def replay(env) -> str:
    """One episode as a strip: each turn's frame, the reply and what it did."""
    cells = []
    for k, turn in enumerate(env.turns, 1):
        if turn.category_verdict == "correct":
            effect = "correct category: success"
        elif turn.action is not None:
            effect = f"request: {turn.action}"
        elif turn.action_verdict == "mismatch" and turn.category_verdict == "mismatch":
            effect = "unparseable: failure"
        else:
            effect = "wrong answer or abstain: failure"
        cells.append(
            f"<figure class='thumb'>{_img(turn.thumb)}<figcaption>turn {k}: <b>{escape(turn.reply)}</b>"
            f"<br>{escape(effect)}</figcaption></figure>"
        )
    verdict = "success" if env.success else "failure"
    return html.details(f"episode {env.entry['id']} (answer {env.answer}): {verdict} after {env.num_turns} turn(s)",
                        f"<p class='muted'>{escape(env.turns[0].prompt) if env.turns else ''}</p>",
                        f"<p class='muted'>options at turn 1: {escape(' | '.join(env.turns[0].options)) if env.turns else ''}</p>",
                        f"<div class='thumbs'>{''.join(cells)}</div>")


def mcqa_report(title: str, metrics: dict, episodes: dict, config: dict, examples: int = 4) -> str:
    names = list(metrics)
    rows = [
        [n, m["n"], m["acc"], m["psr"], m["accuracy"], m["proactive_rate"], m["step_limit_rate"], m["unparseable_rate"]]
        for n, m in metrics.items()
        if m.get("n")
    ]
    chart = grouped_bars(
        names,
        {
            "accuracy": [metrics[n].get("accuracy", 0) for n in names],
            "proactive_rate": [metrics[n].get("proactive_rate", 0) for n in names],
        },
        caption="per scenario",
        ylabel="share",
    )
    blocks = [
        html.section(
            "Metrics (MCQA)",
            html.table(["scenario", "n", "acc", "psr", "accuracy", "proactive_rate", "step_limit_rate", "unparseable_rate"], rows),
            chart,
        )
    ]
    for name, envs in episodes.items():
        chosen = [e for e in envs if e.success][: examples // 2] + [e for e in envs if not e.success][: examples - examples // 2]
        blocks.append(html.section(f"Episodes: {name}", *[replay(e) for e in chosen]))
    blocks.append(html.section("Configuration", html.key_values(config)))
    return html.page(title, *blocks)


def oeg_report(title: str, metrics: dict, rows: dict, config: dict, examples: int = 6) -> str:
    table = html.table(["scenario", "n", "ps", "cc", "agg", "judge_unreadable_rate"],
                       [[n, m["n"], m["ps"], m["cc"], m["agg"], m["judge_unreadable_rate"]] for n, m in metrics.items() if m.get("n")])
    blocks = [html.section("Metrics (OEG)", table)]
    for name, items in rows.items():
        body = html.table(["id", "output", "valid answers", "bits", "ps", "cc"],
                          [[r["id"], r["output"], ", ".join(r["answers"]), r["bits"], r["ps"], r["cc"]] for r in items[:examples]])
        blocks.append(html.section(f"Samples: {name}", body))
    blocks.append(html.section("Configuration", html.key_values(config)))
    return html.page(title, *blocks)
