"""Merged proxies for data-mixture optimisation, replicated on the shapes world (docs/merging.md).

    python benchmarks/dmo_world.py [--domains color,count,position,background] [--seeds 0,1]
        [--steps 120] [--batch 8] [--lr 1e-3] [--n 200] [--grid-seed 42] [--out runs/dmo-world]

The claim under test (arXiv 2602.04937): task-arithmetic merges of per-domain experts, with a
mixture's proportions as coefficients, rank candidate SFT mixtures like models trained on them.

Per seed (``--seeds``), everything below is written to ``OUT/seed<S>/`` and reused on rerun:

1. **World data.** For each domain, ``--steps x --batch`` training conversations (world seed
   5000 + 100 S + d) and ``--n`` held-out evaluation questions (world seed 9000 + 100 S + d),
   as LLaVA-layout files with PNG images; ``suite.json`` maps domains to the evaluation files.
2. **A base that has not learned the domains.** ``embedded-chat`` with its projector
   re-initialised (normal, std 0.02, zero biases; seeded by S): the vision tower and the
   language model are intact, but no image information reaches the language model, so every
   visual domain is at or below chance. Learning a domain means re-learning the vision-language
   bridge for it (and its answer format), which a short fine-tune does.
3. **Experts.** ``vlmkit sft`` (full fine-tuning of projector and language model, vision tower
   frozen; ``--steps`` steps of ``--batch`` at ``--lr``, cosine) of the base on each domain.
4. **The study.** ``vlmkit dmo run --grid 4 --regime full --train-mixtures ...``: the paper's
   21 four-domain mixtures (20 Dirichlet(1,1,1,1) draws with ``--grid-seed`` plus the uniform
   mixture), each merged by task arithmetic (θ₀ + Σ α_d τ_d, vision tower kept from the base)
   and trained for real on ``steps x batch`` conversations drawn with its proportions (the
   experts' count, same recipe and seed), both scored on the suite.

Then prints, per seed: the scores of embedded-chat, the base and the experts, the mixture table (proxy vs trained per domain),
Spearman and Kendall with p-values per domain and for the average, regret, the binomial standard
error of the scores, two references (the mixture's own share α_d as a predictor of domain d,
and the trained models of one seed as a predictor of the other's, the noise ceiling), and writes
``OUT/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

DOMAINS = ("color", "count", "position", "background")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def world_data(root: Path, domains: list[str], n_eval: int, n_train: int, seed: int) -> tuple[Path, dict[str, Path]]:
    """``suite.json`` and one training file per domain (reused when ``data.json`` matches)."""
    import numpy as np
    from prune_world import write_conversations

    from vlmkit.data.world_chat import SceneSource, make_example

    spec = {"domains": domains, "n_eval": n_eval, "n_train": n_train, "seed": seed}
    marker = root / "data.json"
    train = {d: root / f"train-{d}.json" for d in domains}
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return root / "suite.json", train
    suite = {}
    for offset, domain in enumerate(domains):
        rng = np.random.default_rng([seed, offset, 1])
        source = SceneSource(9000 + 100 * seed + offset, rng)
        suite[domain] = write_conversations([make_example(domain, source, rng, []) for _ in range(n_eval)], root, f"eval-{domain}").name
        rng = np.random.default_rng([seed, offset, 2])
        source = SceneSource(5000 + 100 * seed + offset, rng)
        write_conversations([make_example(domain, source, rng, []) for _ in range(n_train)], root, f"train-{domain}")
    (root / "suite.json").write_text(json.dumps(suite))
    marker.write_text(json.dumps(spec))
    return root / "suite.json", train


def make_base(out: Path, seed: int, model_name: str = "embedded-chat") -> Path:
    """``model_name`` (default embedded-chat) with a re-initialised projector (the base that has not learned the domains)."""
    import shutil

    import torch

    from vlmkit.models.chat_registry import load_chat_model

    if (out / "config.json").is_file():
        return out
    model = load_chat_model(model_name)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.model.model.multi_modal_projector.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.normal_(0.0, 0.02, generator=generator)
                if module.bias is not None:
                    module.bias.zero_()
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save(staging)
    staging.rename(out)
    return out


def cached_scores(path: Path, name: str, checkpoint: Path, suite) -> dict:
    from vlmkit.compress.suite import evaluate
    from vlmkit.models.chat_registry import load_chat_model

    scores = json.loads(path.read_text()) if path.is_file() else {}
    if name not in scores:
        scores[name] = evaluate(load_chat_model(str(checkpoint)), suite)
        path.write_text(json.dumps(scores, indent=1))
    return scores[name]


def binomial_se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / n)


def run_seed(args, seed: int) -> dict:
    from vlmkit.compress import dmo
    from vlmkit.compress.dmo_run import DMOOptions, report, run_dmo
    from vlmkit.compress.sft import SFTConfig
    from vlmkit.compress.sft_run import run_sft
    from vlmkit.compress.suite import load_suite

    out = args.out / f"seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    samples = args.steps * args.batch
    log(f"seed {seed}: world data ({args.n} evaluation questions and {samples} training conversations per domain)")
    suite_path, train = world_data(out / "data", args.domains, args.n, samples, seed)
    suite = load_suite(suite_path)
    base = make_base(out / "base", seed, args.model)
    evals = out / "evals.json"
    scores = {"embedded-chat": cached_scores(evals, "embedded-chat", Path(args.model), suite)}  # the shipped model knows them
    scores["base"] = cached_scores(evals, "base", base, suite)
    log(f"seed {seed}: base {fmt(scores['base'])}")
    config = SFTConfig(mode="full", lr=args.lr, batch_size=args.batch, max_steps=args.steps, seed=seed, save_every=max(1, args.steps // 2))
    experts = {}
    for domain in args.domains:
        expert = out / f"expert-{domain}"
        if not (expert / "result.json").is_file():
            log(f"seed {seed}: training the {domain} expert")
            run_sft(str(base), train[domain], expert, config)
        experts[domain] = expert
        scores[f"expert-{domain}"] = cached_scores(evals, f"expert-{domain}", expert, suite)
        log(f"seed {seed}: {domain} expert {fmt(scores[f'expert-{domain}'])}")
    study = out / "study"
    if not (study / "result.json").is_file():
        log(f"seed {seed}: dmo run (21 mixtures: merge, evaluate, train, evaluate)")
        run_dmo(
            DMOOptions(
                base=base,
                experts=experts,
                n_domains=len(args.domains),
                suite=suite_path,
                out=study,
                train_mixtures=train,
                samples=samples,
                sft=config,
                regime="full",
                seed=seed,
                grid_seed=args.grid_seed,
            )
        )
    result = json.loads((study / "result.json").read_text())
    (study / "report.html").write_text(report(result))  # the current report layout, also for studies run before it
    rows = result["mixtures"]
    share = {d: dmo.rank_agreement([r["mixture"][d] for r in rows], [r["mixed"][d] for r in rows]) for d in args.domains}
    ses = {
        kind: {
            b: max(
                binomial_se(r[kind][b], args.n)
                if b != "average"
                else math.sqrt(sum(binomial_se(r[kind][d], args.n) ** 2 for d in args.domains)) / len(args.domains)
                for r in rows
            )
            for b in [*args.domains, "average"]
        }
        for kind in ("proxy", "mixed")
    }
    summary = {
        "seed": seed,
        "scores": scores,
        "mixtures": rows,
        "agreement": result["agreement"],
        "regret": result["regret"],
        "best_by_proxy": result["best_by_proxy"],
        "best_trained": dmo.mixture_id(max(rows, key=lambda r: r["mixed"]["average"])["mixture"]),
        "share_vs_trained": share,
        "max_binomial_se": ses,
        "minutes": (time.time() - started) / 60,
    }
    previous = out / "summary.json"
    if previous.is_file():  # a rerun that only read cached results keeps the first run's time
        summary["minutes"] = max(summary["minutes"], json.loads(previous.read_text()).get("minutes", 0.0))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def fmt(scores: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in scores.items())


def p_text(p: float | None) -> str:
    return "-" if p is None else f"{p:.2g}"


def print_tables(args, summaries: list[dict]) -> None:
    from vlmkit.compress import dmo

    domains = list(args.domains)
    for s in summaries:
        print(f"\n### Seed {s['seed']}\n")
        print("| model | " + " | ".join(domains) + " | average |\n|---|" + "---|" * (len(domains) + 1))
        for name, sc in s["scores"].items():
            print(f"| {name} | " + " | ".join(f"{sc[b]:.3f}" for b in [*domains, "average"]) + " |")
        print(
            "\n| mixture ("
            + ", ".join(domains)
            + ") | "
            + " | ".join(f"{d} proxy / trained" for d in domains)
            + " | average proxy / trained |\n|---|"
            + "---|" * (len(domains) + 1)
        )
        for r in s["mixtures"]:
            mix = ", ".join(f"{r['mixture'][d]:.2f}" for d in domains)
            cells = " | ".join(f"{r['proxy'][b]:.3f} / {r['mixed'][b]:.3f}" for b in [*domains, "average"])
            print(f"| {mix} | {cells} |")
        print("\n| benchmark | Spearman ρ (p) | Kendall τ_b (p) | share α_d vs trained: ρ | max binomial SE (proxy / trained) |")
        print("|---|---|---|---|---|")
        for b in [*domains, "average"]:
            a = s["agreement"][b]
            rho = "-" if a["spearman"] is None else f"{a['spearman']:.3f} ({p_text(a['spearman_p'])})"
            tau = "-" if a["kendall"] is None else f"{a['kendall']:.3f} ({p_text(a['kendall_p'])})"
            sh = s["share_vs_trained"].get(b, {}).get("spearman")
            se = s["max_binomial_se"]
            print(f"| {b} | {rho} | {tau} | {'-' if sh is None else f'{sh:.3f}'} | {se['proxy'][b]:.3f} / {se['mixed'][b]:.3f} |")
        print(f"\nregret {s['regret']:.3f}; proxy picks {s['best_by_proxy']}; best trained {s['best_trained']}; {s['minutes']:.1f} min")
    if len(summaries) == 2 and all(len(s["mixtures"]) == len(summaries[0]["mixtures"]) for s in summaries):
        a, b = summaries
        same = [dmo.mixture_id(r["mixture"]) for r in a["mixtures"]] == [dmo.mixture_id(r["mixture"]) for r in b["mixtures"]]
        if same:
            print("\n### Noise ceiling: trained models of seed {} vs seed {} (same mixtures)\n".format(a["seed"], b["seed"]))
            print("| benchmark | trained vs trained ρ (p) | proxy vs proxy ρ (p) |\n|---|---|---|")
            for bench in [*domains, "average"]:
                t = dmo.rank_agreement([r["mixed"][bench] for r in a["mixtures"]], [r["mixed"][bench] for r in b["mixtures"]])
                p = dmo.rank_agreement([r["proxy"][bench] for r in a["mixtures"]], [r["proxy"][bench] for r in b["mixtures"]])
                cell = lambda x: "-" if x["spearman"] is None else f"{x['spearman']:.3f} ({p_text(x['spearman_p'])})"  # noqa: E731
                print(f"| {bench} | {cell(t)} | {cell(p)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", default=",".join(DOMAINS))
    parser.add_argument("--model", default="embedded-chat", help="the chat model whose projector is reset to make the base")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--steps", type=int, default=120, help="optimisation steps of every expert and mixture model")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--n", type=int, default=200, help="evaluation questions per domain")
    parser.add_argument("--grid-seed", type=int, default=42, help="the Dirichlet grid's seed (the paper's 42 for every seed)")
    parser.add_argument("--out", type=Path, default=Path("runs/dmo-world"))
    args = parser.parse_args()
    args.domains = [d.strip() for d in args.domains.split(",") if d.strip()]
    if not 2 <= len(args.domains) <= 4:
        parser.error("--domains takes 2 to 4 domains (the paper's grids)")

    settings = {k: v for k, v in vars(args).items() if k not in ("seeds", "out")}
    settings["domains"] = list(args.domains)
    marker = args.out / "settings.json"
    if marker.is_file() and json.loads(marker.read_text()) != settings:
        parser.error(f"{args.out} holds a run with other settings ({marker}); choose a new --out")
    args.out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(settings, indent=1))

    import torch

    torch.set_num_threads(1)
    summaries = [run_seed(args, int(seed)) for seed in args.seeds.split(",")]
    (args.out / "summary.json").write_text(json.dumps(summaries, indent=1))
    print_tables(args, summaries)


if __name__ == "__main__":
    main()
