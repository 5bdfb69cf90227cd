"""The ``vlmkit sith`` job: explain the heads of a model's vision tower; write result.json,
arrays.npz (the per-layer ``indices``/``scores``/``sigma`` tensors under the official artefact
keys) and a browsable report.html."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

from vlmkit.errors import UnsupportedError, UserError
from vlmkit.interpret.concepts import build_dictionary
from vlmkit.interpret.image_mean import resolve_image_mean
from vlmkit.interpret.sith import SithConfig, explain, parse_layers, sentence_coherence
from vlmkit.interpret.vocab import load_vocabulary, vocabulary_name
from vlmkit.models import load_model
from vlmkit.report import html, plots
from vlmkit.runs.files import atomic_save_npz
from vlmkit.runs.options import RunOptions
from vlmkit.runs.progress import track
from vlmkit.runs.record import Run

REPORT_VECTORS = 16  # per head in report.html; result.json holds all
SPECTRA_CHARTS = 6  # layers drawn one chart each; more get one chart of median spectra
COMPACT_RESULT_VECTORS = 4096  # a result.json of more explained vectors is written on one line


class SithOptions(RunOptions):
    layers: str = "last4"
    vocab: str = "default"
    k: int = Field(5, ge=1)
    lam: float = Field(0.3, ge=0)
    method: Literal["comp", "omp", "mp", "topk"] = "comp"
    side: Literal["right", "left"] = "right"
    fold_ln: bool = True
    center: bool = True
    ln_post: Literal["affine", "centred"] = "affine"
    image_mean: str = "auto"
    coherence: bool = True

    def sith_config(self) -> SithConfig:
        return SithConfig(k=self.k, lam=self.lam, method=self.method, side=self.side, fold_ln=self.fold_ln,
                          center=self.center, affine_ln_post=self.ln_post == "affine")


def prepare(opts: SithOptions, run: Run):
    """Load the model, vocabulary, dictionary and image mean shared by ``sith`` and ``edit``."""
    concepts = load_vocabulary(opts.vocab)
    with run.timer("load_model"):  # the model and its vision weight view (read from the file when the model is deferred)
        model = load_model(opts.model, device=opts.resolved_device())
        weights = model.vision_weights()
    if weights.proj is None:
        raise UnsupportedError(f"{model.name} reads its image embedding through attention pooling, not a linear projection; SITH needs a "
                               "CLIP-style tower")
    try:
        layers = parse_layers(opts.layers, weights.n_layers)
    except ValueError as exc:
        raise UserError(f"--layers: {exc}") from exc
    if opts.k > len(concepts):
        raise UserError(f"--k {opts.k} exceeds the vocabulary's {len(concepts)} concepts")
    cache = opts.embedding_cache()
    with run.timer("encode_vocabulary"):
        dictionary = build_dictionary(model, concepts, cache=cache)
    with run.timer("image_mean"):
        image_mean, mean_info = resolve_image_mean(model, opts.image_mean, cache=cache, batch_size=opts.batch_size)
    run.info["model_fingerprint"] = model.fingerprint
    return model, weights, layers, dictionary, image_mean, mean_info


def run_sith(opts: SithOptions) -> Path:
    run = Run(opts.out, "sith", opts.model_dump(mode="json"), seed=opts.seed)
    torch.manual_seed(opts.seed)
    model, weights, layers, dictionary, image_mean, mean_info = prepare(opts, run)
    cfg = opts.sith_config()
    with run.timer("decompose"):
        explanations = explain(weights, track(layers, "explaining layers"), dictionary, image_mean, cfg)
    coherences = [None] * len(explanations)
    if opts.coherence:
        from vlmkit.models.minilm import MiniLMEmbedder

        with run.timer("coherence"):
            coherences = sentence_coherence(explanations, dictionary.concepts, MiniLMEmbedder(), cache=opts.embedding_cache())
    vocab = vocabulary_name(opts.vocab)
    arrays = {}
    for e in explanations:
        key = cfg.artefact_key(e.layer, vocab, mean_info["source"])
        arrays |= {f"{key}.indices": e.indices.numpy(), f"{key}.scores": e.scores.numpy(), f"{key}.sigma": e.sigma.numpy()}
    atomic_save_npz(Path(opts.out) / "arrays.npz", **arrays)
    with run.timer("result_and_report"):
        result = build_result(model.name, vocab, len(dictionary), cfg, mean_info, explanations, coherences, dictionary.concepts)
        page = report(result)
    # result.json on one line: ViT-L/14's 24,576 explained vectors take 1 s to indent, 0.1 s not to
    return run.finish(result, page, indent=None if result["summary"]["vectors"] > COMPACT_RESULT_VECTORS else 2)


def _mean(values) -> float | None:
    """Mean over the defined entries (a code with fewer than two active concepts has no coherence)."""
    if values is None or not torch.isfinite(values).any():
        return None
    return round(float(values[torch.isfinite(values)].mean()), 4)


def _rounded(value: float, digits: int) -> float | None:
    """``round``, with NaN (a code without two active concepts has no coherence) as null: the
    result then holds JSON values only, and json's encoder writes it alone, without a walk in Python."""
    return None if math.isnan(value) else round(value, digits)


def build_result(model_name, vocab, n_concepts, cfg, mean_info, explanations, coherences, concepts) -> dict:
    layers = []
    for e, coh in zip(explanations, coherences, strict=True):
        r = e.rank
        heads = []
        # Python lists once per layer: reading tensors element by element costs seconds for ViT-L/14
        sigma, fid, indices, scores = e.sigma.tolist(), e.fidelity.tolist(), e.indices.tolist(), e.scores.tolist()
        coh_list = None if coh is None else coh.tolist()
        for h in range(e.n_heads):
            rows = slice(h * r, (h + 1) * r)
            vectors = [
                {
                    "j": j,
                    "sigma": round(sigma[h][j], 5),
                    "fidelity": round(fid[h * r + j], 4),
                    "coherence": None if coh_list is None else _rounded(coh_list[h * r + j], 4),
                    "concepts": [[concepts[i], round(c, 4)] for i, c in zip(indices[h * r + j], scores[h * r + j], strict=True)],
                }
                for j in range(r)
            ]
            heads.append({"head": h, "mean_fidelity": _mean(e.fidelity[rows]), "mean_coherence": None if coh is None else _mean(coh[rows]),
                          "vectors": vectors})
        layers.append({"layer": e.layer, "key": cfg.artefact_key(e.layer, vocab, mean_info["source"]), "mean_fidelity": _mean(e.fidelity),
                       "mean_coherence": None if coh is None else _mean(coh), "heads": heads})
    all_fid = torch.cat([e.fidelity for e in explanations])
    all_coh = None if coherences[0] is None else torch.cat(coherences)
    return {
        "model": model_name, "vocab": vocab, "n_concepts": n_concepts, "image_mean": mean_info,
        "config": {"k": cfg.k, "lam": cfg.lam, "method": cfg.method, "side": cfg.side, "fold_ln": cfg.fold_ln,
                   "center": cfg.center, "ln_post": "affine" if cfg.affine_ln_post else "centred"},
        "summary": {"layers": [e.layer for e in explanations], "vectors": int(all_fid.numel()), "mean_fidelity": _mean(all_fid),
                    "mean_coherence": _mean(all_coh), "coherence_space": "all-MiniLM-L6-v2" if all_coh is not None else None,
                    "coherence_rule": "coefficient-weighted mean pairwise cosine of the concepts with a non-zero coefficient",
                    "codes_with_coherence": None if all_coh is None else int(torch.isfinite(all_coh).sum())},
        "layers": layers,
    }


def _label(vector: dict, n: int = 2) -> str:
    return ", ".join(name for name, coef in vector["concepts"][:n] if coef > 0) or "-"


def _spectra(layers: list[dict]) -> list[str]:
    """One chart per layer (a line per head) up to ``SPECTRA_CHARTS`` layers; beyond that one chart
    of each layer's median spectrum over its heads (drawing is most of a large report's time)."""
    if len(layers) <= SPECTRA_CHARTS:
        return [plots.lines({f"head {head['head']}": [v["sigma"] for v in head["vectors"]] for head in layer["heads"]},
                            caption=f"layer {layer['layer']}: singular values of each head's value-output matrix",
                            xlabel="singular index j", ylabel="sigma_j", log_y=True, width=4.2, height=2.4) for layer in layers]
    medians = {}
    for layer in layers:
        sigmas = torch.tensor([[v["sigma"] for v in head["vectors"]] for head in layer["heads"]])
        medians[f"layer {layer['layer']}"] = sigmas.median(0).values.tolist()
    return [plots.lines(medians, caption="each layer's median over heads of the singular values of the value-output matrices "
                        "(every head's in result.json)", xlabel="singular index j", ylabel="sigma_j", log_y=True, width=8.4, height=4.0,
                        shade=[layer["layer"] for layer in layers], shade_label="layer")]


def report(result: dict) -> str:
    layers = result["layers"]
    n_heads = max(len(layer["heads"]) for layer in layers)
    grid_rows = []
    for layer in layers:
        cells = []
        for head in layer["heads"]:
            top = "<br>".join(html.fmt(_label(v)) for v in head["vectors"][:3])
            sigma = head["vectors"][0]["sigma"] if head["vectors"] else 0.0
            cells.append(f"<td><a href='#L{layer['layer']}H{head['head']}'>sigma_1 {sigma:.3g}</a><br>{top}</td>")
        grid_rows.append(f"<tr><th>layer {layer['layer']}</th>{''.join(cells)}</tr>")
    spectra = _spectra(layers)
    shown = [v for layer in layers for head in layer["heads"] for v in head["vectors"][:REPORT_VECTORS]]
    scatter = plots.scatter(
        [v["sigma"] for v in shown], [v["fidelity"] for v in shown],
        shade=[layer["layer"] for layer in layers for head in layer["heads"] for _ in head["vectors"][:REPORT_VECTORS]],
        shade_label="layer",
        xlabel="sigma_j",
        ylabel="fidelity",
        caption=f"fidelity of each head's top {REPORT_VECTORS} singular vectors' explanations against their singular values",
    )
    head_cols = "".join(f"<th>head {h}</th>" for h in range(n_heads))
    grid = f"<table class='grid'><thead><tr><th></th>{head_cols}</tr></thead><tbody>{''.join(grid_rows)}</tbody></table>"
    per_layer = [(layer["layer"], layer["mean_fidelity"],
                  "-" if layer["mean_coherence"] is None else layer["mean_coherence"]) for layer in layers]
    detail = []
    for layer in layers:
        for head in layer["heads"]:
            rows = [(v["j"], v["sigma"], v["fidelity"], "-" if v["coherence"] is None else v["coherence"],
                     "; ".join(f"{name} {coef:.3f}" for name, coef in v["concepts"])) for v in head["vectors"][:REPORT_VECTORS]]
            detail.append(
                html.details(
                    f"layer {layer['layer']} head {head['head']}: fidelity {head['mean_fidelity']}",
                    html.table(["j", "sigma", "fidelity", "coherence", "concepts (coefficient)"], rows),
                    anchor=f"L{layer['layer']}H{head['head']}",
                )
            )
    cfg = result["config"]
    return html.page(
        f"SITH: {result['model']}",
        html.key_values(
            {
                "model": result["model"],
                "vocabulary": f"{result['vocab']} ({result['n_concepts']} concepts)",
                "method": f"{cfg['method']} (K={cfg['k']}, lambda={cfg['lam']})",
                "side": cfg["side"],
                "image mean": result["image_mean"]["source"],
                "vectors": result["summary"]["vectors"],
                "mean fidelity": result["summary"]["mean_fidelity"],
                "mean coherence": result["summary"]["mean_coherence"] or "-",
            }
        ),
        html.section(
            "Heads",
            "<p class='muted'>Each cell: the largest singular value and the two leading concepts of the top three "
            "singular vectors. Click a cell for the head's detail.</p>",
            grid,
        ),
        html.section("Spectra", "<div class='thumbs'>" + "".join(spectra) + "</div>"),
        html.section("Per layer", html.table(["layer", "mean fidelity", "mean coherence"], per_layer), scatter),
        html.section(f"Per head (top {REPORT_VECTORS} vectors; all in result.json)", *detail),
    )
