"""``vlmkit dmo run``: do merged proxies rank data mixtures like models trained on them?

For every mixture of the grid: merge the experts by task arithmetic with the mixture's
proportions (:mod:`vlmkit.compress.merge_run`), evaluate the proxy on the suite, and evaluate
the model trained on that mixture (read from ``--mixed DIR/<mixture id>``, or trained here with
``--train-mixtures`` from per-domain conversation files). Scores are saved after each mixture
in ``OUT/work/scores.json``, so an interrupted study resumes; merged proxies are deleted once
scored. ``result.json``: ``mixtures`` (proportions, proxy and mixed scores), ``agreement``
(Spearman, Kendall, p-values per benchmark and ``average``), ``regret``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from vlmkit.compress import dmo
from vlmkit.compress.merge_run import LORA_EXCLUDE, build_config, merge
from vlmkit.compress.sft import SFTConfig
from vlmkit.compress.suite import evaluate, load_suite
from vlmkit.data.conversations import load_conversations
from vlmkit.errors import UserError
from vlmkit.runs.files import atomic_write_json
from vlmkit.runs.options import OPTIONS_CONFIG, check_out
from vlmkit.runs.record import Run


class DMOOptions(BaseModel):
    model_config = OPTIONS_CONFIG
    base: Path
    experts: dict[str, Path]
    n_domains: int = Field(2, ge=2, le=4)
    suite: Path
    out: Path
    mixed: Path | None = None
    train_mixtures: dict[str, Path] | None = None
    samples: int = Field(256, ge=1)
    sft: SFTConfig = SFTConfig()
    regime: Literal["lora", "full"] = "lora"
    seed: int = Field(42, ge=0)
    #: seed of the 4-domain Dirichlet grid (42 in the paper); ``None``: ``seed``
    grid_seed: int | None = Field(None, ge=0)
    max_new_tokens: int = Field(16, ge=1)

    _out = field_validator("out", mode="before")(check_out)

    @field_validator("experts")
    @classmethod
    def _two_or_more(cls, value: dict[str, Path]) -> dict[str, Path]:
        if len(value) < 2:
            raise ValueError(f"a mixture needs at least two expert domains, got {len(value)}; write name=DIR,name=DIR,...")
        return value


def _scores(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _check(opts: DMOOptions, grid: list[dict[str, float]]) -> None:
    """Every input exists before any merge starts."""
    for name, directory in {"base": opts.base, **opts.experts}.items():
        if not (Path(directory) / "config.json").is_file():
            raise UserError(f"{name} checkpoint {directory} has no config.json; pass save_pretrained directories")
    if (opts.mixed is None) == (opts.train_mixtures is None):
        raise UserError("give the mixture-trained models with --mixed DIR (one folder per mixture id) or train them with --train-mixtures")
    if opts.mixed is not None:
        missing = [dmo.mixture_id(m) for m in grid if not (opts.mixed / dmo.mixture_id(m) / "config.json").is_file()]
        if missing:
            raise UserError(
                f"--mixed {opts.mixed} lacks {len(missing)} of {len(grid)} mixture models (e.g. {missing[0]}/); "
                "train them or use --train-mixtures"
            )
    if opts.train_mixtures is not None and set(opts.train_mixtures) != set(opts.experts):
        raise UserError("--train-mixtures needs one conversation file per expert domain (same names as --experts)")


def _train_mixed(opts: DMOOptions, mixture: dict[str, float], out: Path) -> Path:
    """SFT of the base on ``samples`` conversations drawn by the mixture's proportions."""
    import numpy as np

    from vlmkit.compress.sft import finetune
    from vlmkit.models.chat_registry import load_chat_model

    rng = np.random.default_rng(opts.seed)
    data = []
    for domain, count in zip(mixture, dmo.apportion(list(mixture.values()), opts.samples), strict=True):
        pool = load_conversations(opts.train_mixtures[domain])
        data += [pool[i] for i in rng.choice(len(pool), size=count, replace=count > len(pool))]
    model = load_chat_model(str(opts.base))
    finetune(
        model,
        [data[i] for i in rng.permutation(len(data))],
        opts.sft,
        work=out.parent / f".{out.name}.work",
        describe=f"training {out.name}",
    )
    model.save(out)
    return out


def _score_grid(opts: DMOOptions, grid, suite, work: Path, scores: dict, scores_path: Path, run: Run) -> None:
    """Merge, evaluate (and train, when asked) every mixture of ``grid`` not yet in ``scores``,
    saving ``scores`` after each one (a rerun resumes after the last saved mixture)."""
    from vlmkit.models.chat_registry import load_chat_model

    exclude = list(LORA_EXCLUDE) if opts.regime == "lora" else ["vision"]
    for index, mixture in enumerate(grid):
        name = dmo.mixture_id(mixture)
        if name in scores:
            continue
        merged = work / "merged" / name
        shutil.rmtree(merged, ignore_errors=True)
        config = build_config(
            "dmo",
            merge_method="task_arithmetic",
            base_model=str(opts.base),
            exclude=exclude,
            models=[{"model": str(opts.experts[d]), "weight": w} for d, w in mixture.items()],
        )
        with run.timer("merge"):
            merge(config, merged)
        with run.timer("evaluate"):
            proxy = evaluate(load_chat_model(str(merged)), suite, max_new_tokens=opts.max_new_tokens)
        shutil.rmtree(merged, ignore_errors=True)
        mixed_dir = opts.mixed / name if opts.mixed is not None else work / "mixed" / name
        if opts.train_mixtures is not None and not (mixed_dir / "config.json").is_file():
            with run.timer("train"):
                _train_mixed(opts, mixture, mixed_dir)
        with run.timer("evaluate"):
            mixed = evaluate(load_chat_model(str(mixed_dir)), suite, max_new_tokens=opts.max_new_tokens)
        scores[name] = {"mixture": mixture, "proxy": proxy, "mixed": mixed}
        atomic_write_json(scores_path, scores)
        print(f"[{index + 1}/{len(grid)}] {name}: proxy {proxy['average']:.3f}, mixed {mixed['average']:.3f}", flush=True)


def run_dmo(opts: DMOOptions) -> Path:
    if opts.n_domains > len(opts.experts):
        raise UserError(
            f"--grid {opts.n_domains} mixes {opts.n_domains} domains but --experts names {len(opts.experts)}; add experts or lower --grid"
        )
    grid = dmo.mixtures(list(opts.experts), opts.n_domains, opts.seed if opts.grid_seed is None else opts.grid_seed)
    _check(opts, grid)
    suite = load_suite(opts.suite)
    for file in (opts.train_mixtures or {}).values():  # read once now: a bad training file stops the run before any merging
        load_conversations(file)
    work = opts.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    scores_path = work / "scores.json"
    scores = _scores(scores_path)
    run = Run(opts.out, "dmo run", json.loads(opts.model_dump_json()), seed=opts.seed)
    try:
        _score_grid(opts, grid, suite, work, scores, scores_path, run)
    except UserError as exc:  # met after some mixtures were scored (or trained): they are kept for the next run
        inside = exc.resumable is not None and Path(exc.resumable).resolve().is_relative_to(opts.out.resolve())
        if not inside and scores_path.is_file():  # a mixture trained under --mixed (outside --out) keeps its own state
            exc.resumable = scores_path
        raise
    rows = [scores[dmo.mixture_id(m)] for m in grid]
    benchmarks = list(rows[0]["proxy"])
    agreement = {b: dmo.rank_agreement([r["proxy"][b] for r in rows], [r["mixed"][b] for r in rows]) for b in benchmarks}
    result = {
        "n_domains": opts.n_domains,
        "experts": {k: str(v) for k, v in opts.experts.items()},
        "mixtures": rows,
        "agreement": agreement,
        "regret": dmo.regret([r["proxy"]["average"] for r in rows], [r["mixed"]["average"] for r in rows]),
        "best_by_proxy": dmo.mixture_id(rows[max(range(len(rows)), key=lambda i: rows[i]["proxy"]["average"])]["mixture"]),
    }
    run.finish(result, report(result))
    return opts.out


def report(result: dict) -> str:
    """The HTML report of a study: agreement table, regret, one proxy-vs-trained scatter per benchmark."""
    from vlmkit.report.html import key_values, page, section, table

    rows = [[dmo.mixture_id(r["mixture"]), r["proxy"]["average"], r["mixed"]["average"]] for r in result["mixtures"]]
    agreement = [[b, a["spearman"], a["spearman_p"], a["kendall"], a["kendall_p"]] for b, a in result["agreement"].items()]
    return page(
        "vlmkit dmo run",
        section(
            "Rank agreement of merged proxies with mixture-trained models",
            table(["benchmark", "Spearman", "p", "Kendall", "p"], agreement),
            key_values({"regret (average score)": result["regret"], "mixture the proxy picks": result["best_by_proxy"]}),
        ),
        section(
            "Mixtures",
            *(_scatter(result, b) for b in result["agreement"]),
            table(["mixture", "proxy (average)", "mixture-trained (average)"], rows),
        ),
    )


def _scatter(result: dict, benchmark: str = "average") -> str:
    """Proxy score against mixture-trained score on ``benchmark``, one point per mixture (inline SVG)."""
    from vlmkit.report.plots import scatter

    xs = [r["proxy"][benchmark] for r in result["mixtures"]]
    ys = [r["mixed"][benchmark] for r in result["mixtures"]]
    rho = result["agreement"][benchmark]["spearman"]
    return scatter(
        xs,
        ys,
        xlabel=f"merged proxy ({benchmark})",
        ylabel=f"trained on the mixture ({benchmark})",
        caption=f"{benchmark}: one point per mixture (Spearman ρ {'undefined' if rho is None else f'{rho:.2f}'}); "
        "a proxy that ranks mixtures well gives a rising cloud.",
    )
