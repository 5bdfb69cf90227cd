"""Open-world protocol, closed-world ICL and CIRCLE on the shapes world: the tables of
``docs/openworld.md``.

World: a test split of ``--test-size`` images (``world:<size>@test``, labels "<colour> <shape>",
48 classes) and a train split (``world:<pool-size>@train``) for shots and context. For each seed
``s``: ``--n`` queries drawn from the test split with seed ``s``; the ICL pool (k per class) and the
CIRCLE context (m images) drawn with seed ``s``.

- Table 1: open-world metrics per prompt variant (``vlmkit openworld run``);
- Table 2: closed-world accuracy (TI of the class name) for k shots: the LMM with retrieved
  shots (and random shots at the largest k), CLIP zero-shot, k-NN and Tip-Adapter on ``--retriever``;
- Table 3: CIRCLE against zero-shot, pseudo-ICL, random context and CLIP retrieval, and the
  quality of the context labels per round.

Run: ``python benchmarks/openworld_world.py --out runs/openworld-world`` (defaults: embedded-chat,
embedded, 3 seeds). Every answer is cached, so a re-run (or an interrupted one) only re-scores.
Writes ``summary.json`` and prints the markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("VLMKIT_PROGRESS", "0")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from vlmkit.classify.circle_run import CircleOptions, run_circle  # noqa: E402
from vlmkit.classify.icl_run import ICLOptions, run_icl  # noqa: E402
from vlmkit.classify.openworld_run import OpenWorldOptions, run_openworld  # noqa: E402
from vlmkit.classify.openworld_score import ScoreOptions, run_score  # noqa: E402
from vlmkit.runs.files import atomic_write_json  # noqa: E402

METRICS = ("ti", "ss", "cs_max", "cs_median")


def mean_std(values) -> str:
    values = np.asarray(values, dtype=float)
    return f"{100 * values.mean():.1f} ± {100 * values.std():.1f}" if len(values) > 1 else f"{100 * values.mean():.1f}"


def read(out: Path) -> dict:
    return json.loads((out / "result.json").read_text())


def prompts_table(args, seeds) -> tuple[dict, list[str]]:
    raw = {}
    for prompt in args.prompts:
        for seed in seeds:
            out = args.out / "prompts" / f"{prompt}-s{seed}"
            run_openworld(OpenWorldOptions(model=args.model, dataset=f"world:{args.test_size}", prompt=prompt, limit=args.n, seed=seed,
                                           out=out, judge=args.judge, batch_size=args.batch_size))
            raw.setdefault(prompt, []).append(read(out)["metrics"])
    names = [m for m in ("ti", "li", "ss", "cs_max", "cs_median") if m in next(iter(raw.values()))[0]]
    elo_lines = elo_over_prompts(args, seeds[0]) if len(args.prompts) > 1 else []
    lines = [
        "| prompt | " + " | ".join(n.upper().replace("CS_MAX", "bCS").replace("CS_MEDIAN", "mCS") for n in names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for prompt, runs in raw.items():
        lines.append(f"| {prompt} | " + " | ".join(mean_std([r[n] for r in runs]) for n in names) + " |")
    return raw, lines + [""] + elo_lines


def elo_over_prompts(args, seed: int) -> list[str]:
    """Elo with each prompt variant as a player (seed ``seed``'s predictions; SS criterion)."""
    files = []
    for prompt in args.prompts:
        rows = [json.loads(line) for line in (args.out / "prompts" / f"{prompt}-s{seed}" / "predictions.jsonl").read_text().splitlines()]
        path = args.out / "prompts" / f"elo-{prompt}.jsonl"
        path.write_text("".join(json.dumps({**r, "model": prompt}) + "\n" for r in rows))
        files.append(path)
    out = args.out / "prompts" / "elo"
    run_score(ScoreOptions(predictions=files, out=out, seed=seed))
    ratings = read(out)["elo"]["world"]["ratings"]
    lines = ["| prompt (Elo, SS criterion) | median | 95% interval |", "|---|---|---|"]
    for prompt, r in sorted(ratings.items(), key=lambda kv: -kv[1]["median"]):
        lines.append(f"| {prompt} | {r['median']:.0f} | [{r['low']:.0f}, {r['high']:.0f}] |")
    return lines


def icl_table(args, seeds) -> tuple[dict, list[str]]:
    raw: dict = {}
    settings = [(k, "clip") for k in args.shots] + ([(max(args.shots), "random")] if max(args.shots) > 0 else [])
    for k, selection in settings:
        for seed in seeds:
            out = args.out / "icl" / f"k{k}-{selection}-s{seed}"
            run_icl(ICLOptions(model=args.model, dataset=f"world:{args.test_size}", pool=f"world:{args.pool_size}@train", shots=k,
                               selection=selection, retriever=args.retriever, limit=args.n, seed=seed, out=out, batch_size=args.batch_size,
                               question=args.icl_question))
            raw.setdefault(f"{k}-{selection}", []).append(read(out))
    lines = [
        "| k | LMM (retrieved shots) | LMM (random shots) | LMM answers naming no class | CLIP zero-shot | k-NN | Tip-Adapter |",
        "|---|---|---|---|---|---|---|",
    ]
    for k in args.shots:
        runs = raw[f"{k}-clip"]
        rand = raw.get(f"{k}-random")
        cells = [mean_std([r["icl"]["accuracy"] for r in runs]), mean_std([r["icl"]["accuracy"] for r in rand]) if rand else "",
                 mean_std([r["icl"]["unparsed"] for r in runs])]
        cells += [mean_std([r["baselines"][b]["accuracy"] for r in runs]) if (k or b == "clip_zeroshot" or b == "tip_adapter") else "—"
                  for b in ("clip_zeroshot", "knn", "tip_adapter")]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return raw, lines


def circle_table(args, seeds) -> tuple[dict, list[str]]:
    raw: dict = {}
    lines: list[str] = []
    for prompt in args.circle_prompts:
        runs = raw.setdefault(prompt, [])
        for seed in seeds:
            out = args.out / "circle" / f"{prompt}-s{seed}"
            run_circle(CircleOptions(model=args.model, dataset=f"world:{args.test_size}", context=f"world:{args.pool_size}@train", m=args.m,
                                     rounds=args.rounds, prompt=prompt, retriever=args.retriever, limit=args.n, seed=seed, out=out,
                                     judge=args.judge, batch_size=args.batch_size))
            runs.append(read(out))
        methods = list(runs[0]["methods"])
        names = [m for m in ("ti", "li", "ss", "cs_max", "cs_median") if m in runs[0]["methods"][methods[0]]["metrics"]]
        lines += [
            f"prompt `{prompt}` ({runs[0]['question']!r})",
            "",
            "| method | " + " | ".join(n.upper().replace("CS_MAX", "bCS").replace("CS_MEDIAN", "mCS") for n in names) + " |",
            "|---" * (len(names) + 1) + "|",
        ]
        for method in methods:
            lines.append(f"| {method} | " + " | ".join(mean_std([r["methods"][method]["metrics"][n] for r in runs]) for n in names) + " |")
        lines += ["", "| round | context labels: TI vs truth | SS vs truth |", "|---|---|---|"]
        for t in range(args.rounds + 1):
            quality = [r["context"]["label_quality_per_round"][t] for r in runs]
            lines.append(f"| t = {t} | {mean_std([q['ti'] for q in quality])} | {mean_std([q['ss'] for q in quality])} |")
        lines.append("")
    return raw, lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="embedded-chat")
    parser.add_argument("--retriever", default="embedded")
    parser.add_argument("--judge", default=None)
    parser.add_argument("--n", type=int, default=60, help="queries per seed")
    parser.add_argument("--test-size", type=int, default=600)
    parser.add_argument("--pool-size", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--prompts", nargs="+", default=["base", "generic", "specific", "cot", "caption", "describe", "list"])
    parser.add_argument("--shots", type=int, nargs="+", default=[0, 4, 8])
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument(
        "--icl-question", default=None, help="replaces the closed-world multiple-choice question ({classes}: the class list)"
    )
    parser.add_argument("--circle-prompts", nargs="+", default=["base", "world"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--parts", nargs="+", default=["prompts", "icl", "circle"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    summary, printed = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}, []
    parts = {"prompts": prompts_table, "icl": icl_table, "circle": circle_table}
    for part in args.parts:
        summary[part], lines = parts[part](args, args.seeds)
        printed += [f"## {part}", "", *lines, ""]
        atomic_write_json(args.out / "summary.json", summary)
        print("\n".join(printed), flush=True)
    (args.out / "tables.md").write_text("\n".join(printed) + "\n")


if __name__ == "__main__":
    sys.exit(main())
