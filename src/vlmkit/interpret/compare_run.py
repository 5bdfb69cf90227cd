"""The ``vlmkit sith compare`` job: match the heads of a tuned model to its base."""

from __future__ import annotations

from pathlib import Path

import torch

from vlmkit.errors import UserError
from vlmkit.interpret.compare import jaccard, match_layer
from vlmkit.interpret.sith import explain
from vlmkit.interpret.sith_run import SithOptions, prepare
from vlmkit.report import html, plots
from vlmkit.runs.progress import track
from vlmkit.runs.record import Run


class CompareOptions(SithOptions):
    tuned: str
    coherence: bool = False


def run_compare(opts: CompareOptions) -> Path:
    run = Run(opts.out, "sith-compare", opts.model_dump(mode="json"), seed=opts.seed)
    cfg = opts.sith_config()
    base = prepare(opts, run)
    tuned = prepare(opts.model_copy(update={"model": opts.tuned}), run)
    base_model, base_weights, layers, base_dict, base_mean, _ = base
    tuned_model, tuned_weights, _, tuned_dict, tuned_mean, _ = tuned
    shape = (base_weights.n_layers, base_weights.n_heads, base_weights.d_model)
    if shape != (tuned_weights.n_layers, tuned_weights.n_heads, tuned_weights.d_model):
        raise UserError(f"{opts.model} and {opts.tuned} have different vision towers; compare a model with its own fine-tune")
    with run.timer("decompose"):
        base_expl = explain(base_weights, track(layers, "explaining the base"), base_dict, base_mean, cfg)
        tuned_expl = explain(tuned_weights, track(layers, "explaining the fine-tune"), tuned_dict, tuned_mean, cfg)
    out_layers = []
    for b, t in zip(base_expl, tuned_expl, strict=True):
        r, d = b.rank, b.directions.shape[-1]
        m = match_layer(b.layer, b.sigma, b.directions.view(-1, r, d), t.sigma, t.directions.view(-1, r, d), seed=opts.seed)
        heads = []
        for h in range(b.n_heads):
            rows = torch.arange(r) + h * r
            tuned_rows = m.match[h] + h * r
            base_names = [[base_dict.concepts[i] for i in idx] for idx in b.indices[rows].tolist()]
            tuned_names = [[tuned_dict.concepts[i] for i in idx] for idx in t.indices[tuned_rows].tolist()]
            overlap = jaccard(base_names, tuned_names)
            heads.append({
                "head": h, "mean_cos": _r(m.cos[h].mean()), "random_cos": _r(m.random_cos[h].mean()),
                "mean_rel_dsigma": _r(m.rel_dsigma[h].mean()), "mean_abs_rel_dsigma": _r(m.rel_dsigma[h].abs().mean()),
                "jaccard": _r(overlap.mean()),
                "vectors": [
                    {"j": j, "matched": int(m.match[h, j]), "cos": _r(m.cos[h, j]), "sigma": _r(b.sigma[h, j]),
                     "tuned_sigma": _r(t.sigma[h, m.match[h, j]]), "jaccard": _r(overlap[j]),
                     "concepts": base_names[j], "tuned_concepts": tuned_names[j]}
                    for j in range(r)
                ],
            })
        out_layers.append({"layer": b.layer, **{key: _r(torch.tensor([hd[key] for hd in heads]).mean()) for key in
                           ("mean_cos", "random_cos", "mean_rel_dsigma", "mean_abs_rel_dsigma", "jaccard")}, "heads": heads})
    summary = {key: _r(torch.tensor([layer[key] for layer in out_layers]).mean()) for key in ("mean_cos", "random_cos", "mean_rel_dsigma",
                                                                                              "mean_abs_rel_dsigma", "jaccard")}
    result = {"base": base_model.name, "tuned": tuned_model.name, "layers": out_layers, "summary": summary,
              "config": {"k": cfg.k, "lam": cfg.lam, "method": cfg.method, "side": cfg.side, "vocab": opts.vocab}}
    return run.finish(result, _report(result))


def _r(value) -> float:
    return round(float(value), 4)


def _report(result: dict) -> str:
    columns = ["layer", "matched |cos|", "random |cos|", "mean dsigma/sigma", "mean |dsigma/sigma|", "concept Jaccard"]
    keys = ("mean_cos", "random_cos", "mean_rel_dsigma", "mean_abs_rel_dsigma", "jaccard")
    rows = [[layer["layer"], *(layer[k] for k in keys)] for layer in result["layers"]]
    heat = [[head["mean_cos"] for head in layer["heads"]] for layer in result["layers"]]
    n_heads = len(result["layers"][0]["heads"])
    detail = [
        html.details(
            f"layer {layer['layer']} head {head['head']}: |cos| {head['mean_cos']}, Jaccard {head['jaccard']}",
            html.table(
                ["j", "matched", "|cos|", "sigma", "tuned sigma", "Jaccard", "base concepts", "tuned concepts"],
                [
                    (
                        v["j"],
                        v["matched"],
                        v["cos"],
                        v["sigma"],
                        v["tuned_sigma"],
                        v["jaccard"],
                        ", ".join(v["concepts"]),
                        ", ".join(v["tuned_concepts"]),
                    )
                    for v in head["vectors"][:16]
                ],
            ),
        )
        for layer in result["layers"]
        for head in layer["heads"]
    ]
    return html.page(
        f"SITH compare: {result['base']} vs {result['tuned']}",
        html.key_values(
            {"base": result["base"], "tuned": result["tuned"], **{k.replace("_", " "): v for k, v in result["summary"].items()}}
        ),
        html.section("Per layer", html.table(columns, rows)),
        html.section(
            "Matched |cos| per head",
            html.heatmap(
                heat,
                [f"layer {layer['layer']}" for layer in result["layers"]],
                [f"head {h}" for h in range(n_heads)],
                "shading is row-relative",
            ),
        ),
        html.section(
            "Rotation against re-weighting",
            plots.scatter(
                [v["cos"] for layer in result["layers"] for head in layer["heads"] for v in head["vectors"]],
                [
                    (v["tuned_sigma"] - v["sigma"]) / max(v["sigma"], 1e-12)
                    for layer in result["layers"]
                    for head in layer["heads"]
                    for v in head["vectors"]
                ],
                shade=[layer["layer"] for layer in result["layers"] for head in layer["heads"] for _ in head["vectors"]],
                shade_label="layer",
                xlabel="matched |cos| (1: the direction is kept)",
                ylabel="dsigma / sigma",
                caption="each singular vector: how far it turned (x) and how much its singular value changed (y)",
            ),
        ),
        html.section("Per head (top 16 vectors; all in result.json)", *detail),
    )
