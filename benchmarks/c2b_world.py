"""C2B on the shapes world: three classifiers with known biases, fresh pools per seed.

For each seed ``s``:

- pool: a balanced, captioned world (``--pool`` images, world seed ``100 + s``), indexed with
  ``embedded`` (the retriever);
- labelled split: a balanced world (``--labelled`` images, seed ``200 + s``) whose annotations
  give the ground-truth biases for Hit / False Hit / Miss;
- classifiers, task "classify the shape of the object":
  ``zeroshot:embedded-biased`` (trained where shape is tied to background, p = 0.95),
  ``zeroshot:embedded`` (no planted bias: the false-positive control),
  ``probe:<file>``: a linear probe on ``embedded``'s image embeddings trained on a world where
  shape is tied to texture (p = 0.95, seed ``300 + s``);
- proposals from a file (the world's five nuisance attributes and their values) for all three,
  and from ``smollm2-135m`` (sampled at temperature 0.7 with seed ``s``, three tries) for
  ``embedded-biased`` (``--llm-temperatures 0 0.7`` adds greedy decoding).

Run: ``python benchmarks/c2b_world.py --out runs/c2b-world`` (about 15 minutes per seed on 2
shared CPU cores). Writes ``summary.json`` and prints the tables of ``docs/c2b.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("VLMKIT_PROGRESS", "0")

import torch  # noqa: E402

from vlmkit.audit.c2b_run import C2BOptions, run_c2b  # noqa: E402
from vlmkit.audit.probe import fit_probe  # noqa: E402
from vlmkit.audit.proposals import PROMPT_EXAMPLE  # noqa: E402
from vlmkit.data import world as w  # noqa: E402
from vlmkit.data.datasets import read_manifest  # noqa: E402
from vlmkit.data.world_sample import generate  # noqa: E402
from vlmkit.embed import embed_images  # noqa: E402
from vlmkit.errors import UserError  # noqa: E402
from vlmkit.models import load_model  # noqa: E402
from vlmkit.retrieval.index_run import IndexBuildOptions, run_index_build  # noqa: E402
from vlmkit.runs.cache import EmbeddingCache  # noqa: E402

TASK = "classify the shape of the object"
NUISANCES = ("background", "color", "texture", "size", "position")
PLANTED = {"zeroshot:embedded-biased": w.Spurious("shape", "background", 0.95), "probe": w.Spurious("shape", "texture", 0.95)}


def prepare(root: Path, seed: int, pool: int, labelled: int, probe_n: int) -> dict:
    """Pool + index, labelled split, texture-biased probe and the proposals file of one seed."""
    paths = {"pool": root / "pool", "index": root / "index", "labelled": root / "labelled", "probe": root / "probe-texture.safetensors",
             "proposals": root / "proposals.json"}
    if not (paths["pool"] / "manifest.jsonl").is_file():
        generate(paths["pool"], pool, 100 + seed)
    if not (paths["index"] / "result.json").is_file():
        run_index_build(IndexBuildOptions(dataset=str(paths["pool"] / "manifest.jsonl"), model="embedded", out=paths["index"]))
    if not (paths["labelled"] / "manifest.jsonl").is_file():
        generate(paths["labelled"], labelled, 200 + seed)
    if not paths["probe"].is_file():
        train = read_manifest(generate(root / "probe-train", probe_n, 300 + seed, spurious=PLANTED["probe"]))
        vectors = embed_images(load_model("embedded"), train.paths, cache=EmbeddingCache()).vectors
        fit_probe(vectors, [s.label for s in train.samples], "embedded", l2=1e-3, seed=seed).save(paths["probe"])
    paths["proposals"].write_text(json.dumps({name: list(w.ATTRIBUTES[name]) for name in NUISANCES}, indent=1))
    return paths


def planted_check(result: dict, knob: w.Spurious) -> dict:
    """Per target: is phi of the planted pairing positive, and is it the largest phi of the attribute."""
    entry = next((e for e in result["ranking"] if e["attribute"] == knob.nuisance), None)
    if entry is None:
        return {"positive": 0, "argmax": 0, "targets": 0}
    positive = argmax = 0
    targets = sorted({r["target"] for r in entry["classes"] if r["phi"] is not None})
    for target in targets:
        rows = [r for r in entry["classes"] if r["target"] == target and r["phi"] is not None]
        paired = next((r for r in rows if r["name"] == knob.paired(target)), None)
        positive += bool(paired and paired["phi"] > 0)
        argmax += bool(paired and paired["phi"] > 0 and paired["phi"] == max(r["phi"] for r in rows))
    return {"positive": positive, "argmax": argmax, "targets": len(targets)}


def planted_counts(result: dict, attribute: str) -> dict:
    """Hit / False Hit / Miss restricted to one attribute's rows (detected and ground truth)."""
    from vlmkit.audit.evaluate import hit_miss

    truth = [g for g in result.get("evaluation", {}).get("ground_truth_biases", []) if g["attribute"] == attribute]
    return hit_miss([d for d in result["detected"] if d["attribute"] == attribute], truth)


def paired_accuracy(result: dict, knob: w.Spurious) -> tuple[float, float]:
    """The classifier's accuracy on the labelled split with the paired nuisance value and without it."""
    entry = next(e for e in result["evaluation"]["ground_truth_ranking"] if e["attribute"] == knob.nuisance)
    sums = {True: [0.0, 0], False: [0.0, 0]}
    for r in entry["classes"]:
        if r["accuracy"] is not None:
            key = r["name"] == knob.paired(r["target"])
            sums[key][0] += r["accuracy"] * r["n"]
            sums[key][1] += r["n"]
    return sums[True][0] / sums[True][1], sums[False][0] / sums[False][1]


def row(result: dict, knob: w.Spurious | None) -> dict:
    scores = {e["attribute"]: e["score"] for e in result["ranking"]}
    ev = result.get("evaluation", {})
    return {
        "on_planted": planted_counts(result, knob.nuisance) if knob else None,
        "paired_accuracy": paired_accuracy(result, knob) if knob and "evaluation" in result else None,
        "first": result["ranking"][0]["attribute"],
        "scores": scores,
        "intervals": {e["attribute"]: e["interval"] for e in result["ranking"]},
        "planted": planted_check(result, knob) if knob else None,
        "detected": len(result["detected"]),
        **{k: ev.get(k) for k in ("hit", "false_hit", "miss", "precision", "recall")},
        "agreement": ev.get("agreement"),
        "retrieval_precision": result.get("retrieval_precision"),
    }


def llm_stats(result: dict) -> dict:
    """How often the LLM proposed the planted attribute (an attribute named with 'background'),
    and how many proposed classes are values the world has."""
    proposals = result["proposals"]
    values = {v for vals in w.ATTRIBUTES.values() for v in vals}
    background = sum(any("background" in a for a in p) for p in proposals.values())
    classes = [c for p in proposals.values() for cs in p.values() for c in cs]
    echoes = sum(set(p) == set(PROMPT_EXAMPLE) for p in proposals.values())
    return {
        "classes_with_proposals": len(proposals),
        "classes_failed": len(result["proposal_failures"]),
        "with_background": background,
        "echoes": echoes,
        "attributes": sorted({a for p in proposals.values() for a in p}),
        "world_values": sum(c in values for c in classes),
        "proposed_values": len(classes),
        "template": result["template"],
        "template_source": result["template_source"],
    }


def run_seed(root: Path, seed: int, args) -> dict:
    paths = prepare(root, seed, args.pool, args.labelled, args.probe_n)
    common = dict(
        task=TASK,
        classes=",".join(w.SHAPES),
        index=paths["index"],
        prompts=["world-shape"],
        k=args.k,
        seed=seed,
        annotations=str(paths["labelled"] / "manifest.jsonl"),
        target_attribute="shape",
        pool_labels=str(paths["pool"] / "manifest.jsonl"),
    )
    out: dict = {"seed": seed, "file": {}, "llm": {}}
    classifiers = {
        "zeroshot:embedded-biased": PLANTED["zeroshot:embedded-biased"],
        "zeroshot:embedded": None,
        f"probe:{paths['probe']}": PLANTED["probe"],
    }
    for spec, knob in classifiers.items():
        name = "probe:texture" if spec.startswith("probe:") else spec
        result_dir = root / f"file-{name.replace(':', '-')}"
        if not (result_dir / "result.json").is_file():
            run_c2b(C2BOptions(classifier=spec, proposals=paths["proposals"], out=result_dir, **common))
        out["file"][name] = row(json.loads((result_dir / "result.json").read_text()), knob)
        print(f"seed {seed} file {name}: {out['file'][name]['first']} {out['file'][name]['scores']}", flush=True)
    for temperature in args.llm_temperatures:
        result_dir = root / f"llm-t{temperature}-embedded-biased"
        stopped = root / f"llm-t{temperature}-stopped.txt"  # a run the LLM stopped leaves no --out; its one line is kept here
        try:
            if stopped.is_file():
                raise UserError(stopped.read_text())
            if not (result_dir / "result.json").is_file():
                run_c2b(
                    C2BOptions(
                        classifier="zeroshot:embedded-biased", llm="smollm2-135m", llm_temperature=temperature, out=result_dir, **common
                    )
                )
            result = json.loads((result_dir / "result.json").read_text())
            out["llm"][str(temperature)] = {**row(result, PLANTED["zeroshot:embedded-biased"]), **llm_stats(result)}
        except UserError as exc:
            stopped.write_text(str(exc))
            out["llm"][str(temperature)] = {"error": str(exc)}
        print(f"seed {seed} llm t={temperature}: {out['llm'][str(temperature)]}", flush=True)
    return out


def figure(result_dir: Path, attribute: str, target: str, path: Path, per_row: int = 6) -> Path:
    """A grid of the images retrieved for ``target`` and each class of ``attribute``, framed green
    where the classifier named the target and red where it did not."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    result = json.loads((result_dir / "result.json").read_text())
    groups = [g for g in result["groups"] if g["attribute"] == attribute and g["target"] == target]
    phis = {r["name"]: r["phi"] for e in result["ranking"] if e["attribute"] == attribute for r in e["classes"] if r["target"] == target}
    fig, axes = plt.subplots(len(groups), per_row, figsize=(per_row * 0.9 + 1.6, len(groups) * 0.95))
    for row, group in zip(axes, groups, strict=True):
        row[0].set_ylabel(f"{group['bias']}\nphi {phis.get(group['bias']) or 0:+.2f}", rotation=0, ha="right", va="center", fontsize=8)
        for ax, (image, predicted) in zip(
            row, list(zip(group["paths"], group["predictions"], strict=True))[:per_row] + [(None, None)] * per_row, strict=False
        ):
            ax.set_xticks([])
            ax.set_yticks([])
            if image is None:
                ax.axis("off")
                continue
            ax.imshow(Image.open(image))
            colour = "#2ca02c" if predicted == target else "#d62728"
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(2.5)
            ax.set_title(predicted, fontsize=6, color=colour, pad=1)
    fig.suptitle(f"{result['classifier'].split('/')[-1]}: '{target}' images retrieved per {attribute}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def tables(summary: list[dict]) -> str:
    """The markdown tables of docs/c2b.md."""
    def fmt(x):
        return "-" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)

    lines = [
        "| seed | classifier | first | its score [90% basic interval] | planted phi > 0 / largest | hit | false hit | miss "
        "| precision | recall | sign agreement | Pearson r | planted attribute: hit / false hit / miss |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for seed in summary:
        for name, r in seed["file"].items():
            first = r["first"]
            planted = f"{r['planted']['positive']} / {r['planted']['argmax']} of {r['planted']['targets']}" if r["planted"] else "-"
            lo, hi = r["intervals"][first]
            p = r["on_planted"]
            on_planted = f"{p['hit']} / {p['false_hit']} / {p['miss']}" if p else "-"
            lines.append(
                f"| {seed['seed']} | {name} | {first} | {r['scores'][first]:.3f} [{lo:.3f}, {hi:.3f}] | {planted} "
                f"| {r['hit']} | {r['false_hit']} | {r['miss']} | "
                f"{fmt(r['precision'])} | {fmt(r['recall'])} | {fmt(r['agreement']['sign_agreement'])} "
                f"| {fmt(r['agreement']['pearson'])} | {on_planted} |"
            )
    names = list(summary[0]["file"])
    attributes = sorted(summary[0]["file"][names[0]]["scores"])
    lines += ["", "| classifier | " + " | ".join(attributes) + " |", "|---|" + "---|" * len(attributes)]
    for name in names:
        cells = []
        for a in attributes:
            values = [seed["file"][name]["scores"][a] for seed in summary]
            cells.append(f"{sum(values) / len(values):.3f} ({min(values):.3f}-{max(values):.3f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| seed | classifier | labelled accuracy with the paired value | without it |", "|---|---|---|---|"]
    for seed in summary:
        for name, r in seed["file"].items():
            if r.get("paired_accuracy"):
                lines.append(f"| {seed['seed']} | {name} | {r['paired_accuracy'][0]:.3f} | {r['paired_accuracy'][1]:.3f} |")
    lines += ["", "| seed | retrieved images | shows the target | shows the bias class | both |", "|---|---|---|---|---|"]
    for seed in summary:
        rp = next(iter(seed["file"].values()))["retrieval_precision"]
        lines.append(f"| {seed['seed']} | {rp['n']} | {fmt(rp['target'])} | {fmt(rp['bias'])} | {fmt(rp['both'])} |")
    lines += ["", "| seed | LLM temperature | outcome |", "|---|---|---|"]
    for seed in summary:
        for temperature, r in seed["llm"].items():
            if "error" in r:
                outcome = "stopped: " + r["error"].split(" (class")[0]
            else:
                outcome = (
                    f"{r['classes_with_proposals']} of 6 classes with proposals ({r['with_background']} with a background attribute, "
                    f"{r['echoes']} copied the prompt's example); "
                    f"attributes {', '.join(r['attributes'])}; {r['world_values']} of {r['proposed_values']} classes are world values; "
                    f"first-ranked {r['first']}; "
                    f"hit {r['hit']}, false hit {r['false_hit']}, miss {r['miss']}"
                )
            lines.append(f"| {seed['seed']} | {temperature} | {outcome} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/c2b-world"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--pool", type=int, default=2000)
    parser.add_argument("--labelled", type=int, default=1200)
    parser.add_argument("--probe-n", type=int, default=1200)
    parser.add_argument("-k", type=int, default=20)
    parser.add_argument("--llm-temperatures", type=float, nargs="*", default=[0.7])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--figures", type=Path, default=None, help="write the docs' figures (first seed) to this folder")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    summary = []
    for seed in args.seeds:
        summary.append(run_seed(args.out / f"seed{seed}", seed, args))
        (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    if args.figures:
        first = args.out / f"seed{args.seeds[0]}"
        figure(first / "file-zeroshot-embedded-biased", "background", "square", args.figures / "c2b_world_background.png")
        figure(first / "file-probe-texture", "texture", "square", args.figures / "c2b_world_texture.png")
    print(tables(summary), file=sys.stdout)


if __name__ == "__main__":
    main()
