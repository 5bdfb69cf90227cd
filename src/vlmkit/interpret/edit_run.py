"""The ``vlmkit edit`` job: explain the chosen layers, rescale the singular values whose
explanations match the given concepts, and save the edited model to ``--out`` (loadable with
``--model DIR``), with result.json listing every edited vector."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from vlmkit.interpret.edit import edit_by_concepts
from vlmkit.interpret.sith import explain
from vlmkit.interpret.sith_run import SithOptions, prepare
from vlmkit.report import html
from vlmkit.runs.progress import track
from vlmkit.runs.record import Run

DEFAULT_FACTOR = {"suppress": 0.0, "amplify": 1.5}


class EditOptions(SithOptions):
    suppress: str | None = None
    amplify: str | None = None
    factor: float | None = Field(None, ge=0)  # rescales the matched singular values: 0 removes, above 1 amplifies
    threshold: float = Field(0.5, ge=-1, le=1)
    coherence: bool = False

    @model_validator(mode="after")
    def _one_direction(self):
        if (self.suppress is None) == (self.amplify is None):
            raise ValueError("give exactly one of --suppress or --amplify")
        if not self.targets:
            raise ValueError(f"--{self.mode} needs at least one concept, e.g. --{self.mode} water,forest")
        return self

    @property
    def mode(self) -> str:
        return "suppress" if self.suppress is not None else "amplify"

    @property
    def targets(self) -> list[str]:
        return [c.strip() for c in (self.suppress if self.suppress is not None else self.amplify).split(",") if c.strip()]

    @property
    def alpha(self) -> float:
        return DEFAULT_FACTOR[self.mode] if self.factor is None else self.factor


def run_edit(opts: EditOptions) -> Path:
    run = Run(opts.out, "edit", opts.model_dump(mode="json"), seed=opts.seed)
    model, weights, layers, dictionary, image_mean, mean_info = prepare(opts, run)
    cfg = opts.sith_config()
    targets = dictionary.center(model.encode_texts(opts.targets))
    with run.timer("decompose"):
        explanations = explain(weights, track(layers, "explaining layers"), dictionary, image_mean, cfg)
    with run.timer("edit"):
        edited = edit_by_concepts(weights, explanations, dictionary, targets, opts.threshold, opts.alpha, cfg)
    model.set_vision_weights(weights)
    with run.timer("save_model"):
        model.save(opts.out)
    total = sum(e.n_heads * e.rank for e in explanations)
    result = {
        "model": model.name, "edited_model": str(opts.out), "mode": opts.mode, "targets": opts.targets, "factor": opts.alpha,
        "threshold": opts.threshold, "layers": layers, "image_mean": mean_info, "vectors_examined": total,
        "vectors_edited": len(edited), "edited": edited,
    }
    run.info["edited_fingerprint"] = model.fingerprint
    return run.finish(result, _report(result))


def _report(result: dict) -> str:
    rows = [(e["layer"], e["head"], e["j"], e["sigma"], e["new_sigma"], e["relevance"],
             "; ".join(f"{n} {c:.3f}" for n, c in e["concepts"])) for e in result["edited"]]
    return html.page(
        f"SITH edit: {result['mode']} {', '.join(result['targets'])}",
        html.key_values({"model": result["model"], "edited model": result["edited_model"], "factor": result["factor"],
                         "threshold": result["threshold"], "layers": ", ".join(map(str, result["layers"])),
                         "vectors edited": f"{result['vectors_edited']} of {result['vectors_examined']}"}),
        html.section("Edited singular vectors", html.table(["layer", "head", "j", "sigma", "new sigma", "relevance", "explanation"], rows)),
        "<p class='muted'>Load the edited model with <code>--model " + html.fmt(result["edited_model"]) + "</code>.</p>",
    )
