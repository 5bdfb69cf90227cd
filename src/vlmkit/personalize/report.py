"""``report.html`` of ``vlmkit r2p eval``: the method table, then queries with their candidates,
the reasoning, verification and pairwise evidence, and every method's decision."""

from __future__ import annotations

import math
from html import escape

from vlmkit.report import html, plots

COLUMNS = ("accuracy", "positive_accuracy", "negative_accuracy", "overall_accuracy", "recall_retrieval")


def _fmt(value) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _query_block(row: dict, db) -> str:
    refs = {c.id: c.references[0] for c in db.concepts}
    items = [(row["query"], f"query (truth: {row['truth'] or 'none'})")]
    items += [(refs[c], f"#{k + 1} {c}: s={row['scores'][db.index(c)]:.3f}") for k, c in enumerate(row["candidates"])]
    reasoning = row.get("reasoning")
    lines = []
    if reasoning is None:
        lines.append("reasoning: reply could not be parsed (pairwise fallback)")
    else:
        lines.append(f"reasoning chose: {reasoning['choice'] or 'none'} — {reasoning['rationale']}")
        lines += [f"matched for {c}: {', '.join(a) or '(none)'}" for c, a in reasoning["matched"].items()]
    if row.get("verification"):
        lines.append("verification: " + ", ".join(f"{c}={_fmt(v) if v is not None else '-inf'}" for c, v in row["verification"].items()))
    if row.get("pairwise"):
        lines.append("pairwise p(yes): " + ", ".join(f"{c}={v:.3f}" for c, v in row["pairwise"].items()))
    lines.append("answers: " + ", ".join(f"{m}={a or 'none'}{' ✓' if a == row['truth'] else ' ✗'}" for m, a in row["answers"].items()))
    body = plots.thumbnails(items, size=80) + "<pre>" + escape("\n".join(lines)) + "</pre>"
    mark = "✓" if row["answers"].get("r2p") == row["truth"] else "✗"
    name = row["query"].rsplit("/", 1)[-1]
    return html.details(f"{mark} {name} (truth {row['truth'] or 'none'}, r2p {row['answers'].get('r2p') or 'none'})", body)


def render_report(result: dict, rows: list[dict], db, limit: int) -> str:
    table = result["table"]
    head = html.table(["method", *COLUMNS, "decided by"],
                      [[m, *(_fmt(v.get(c)) for c in COLUMNS), ", ".join(f"{k}: {n}" for k, n in v["decided_by"].items())]
                       for m, v in table.items()])
    chart = html.bars(list(table), [v["accuracy"] if not math.isnan(v["accuracy"]) else 0.0 for v in table.values()],
                      caption="weighted (balanced) accuracy per method")
    wrong = [r for r in rows if r["answers"].get("r2p") != r["truth"]]
    right = [r for r in rows if r["answers"].get("r2p") == r["truth"]]
    shown = (wrong + right)[:limit]
    facts = html.key_values({"queries": result["n_queries"], "k": result["k"], "reasoning mode": result["reasoning_mode"],
                             "unparsable reasoning replies": result["reasoning_failures"],
                             "queries that needed pairwise matching": result["pairwise_queries"],
                             "chat model": result["database"].get("chat_model"), "contrastive model": result["database"].get("clip_model")})
    return html.page("R2P: personal concept recognition", facts, html.section("Methods", head, chart),
                     html.section(f"Queries ({len(shown)} of {len(rows)}, r2p's errors first)", *(_query_block(r, db) for r in shown)))
