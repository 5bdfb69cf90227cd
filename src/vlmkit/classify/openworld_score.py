"""The ``vlmkit openworld score`` job: prediction files in, open-world metrics and Elo out.

Input rows (JSONL): ``prediction`` and ``label`` (required), ``dataset``, ``group``, ``model``,
``id`` or ``path`` (optional). ``result.json`` keys: ``models.<model>.{metrics, per_dataset,
per_group}`` (metric names ``ti``, ``em``, ``ss``, ``cs_max`` (bCS), ``cs_median`` (mCS), and
``li`` with a judge); with one model the same three blocks also sit at the top level; ``elo``
(per dataset: model -> online, mean, median, low, high) when two or more models answered the
same items; ``judge``, ``li_prompt``, ``elo_criterion``. Per-row scores go to ``scores.jsonl``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vlmkit.classify import elo
from vlmkit.classify.chat_options import ChatRunOptions
from vlmkit.classify.openworld import aggregate, wrap_lists
from vlmkit.classify.openworld_metrics import SentenceSpace, score_rows
from vlmkit.classify.prompts import OFFICIAL_QUESTION, judge_template, li_wrap_template
from vlmkit.errors import UserError
from vlmkit.runs.readers import read_jsonl
from vlmkit.runs.record import Run

FIX = 'write one JSON object per line with "prediction" and "label" strings (optional "dataset", "group", "model", "id")'


class PredictionRow(BaseModel):
    model_config = ConfigDict(extra="allow")

    prediction: str
    label: str = Field(min_length=1)
    dataset: str | None = None
    group: str | None = None
    model: str | None = None
    id: str | int | None = None
    path: str | None = None


class ScoreOptions(ChatRunOptions):
    predictions: list[Path]
    judge: str | None = None
    judge_mode: Literal["generate", "score"] = "generate"
    question: str = OFFICIAL_QUESTION
    li_wrap: bool = False
    elo_games: int = Field(10_000, ge=0)
    elo_rounds: int = Field(100, ge=1)
    elo_bootstrap: Literal["resample", "shards"] = "resample"
    elo_k: float = Field(16.0, gt=0)


def read_predictions(paths: list[Path]) -> dict[str, list[dict]]:
    """Model name -> its rows (``model`` field, else the file's stem)."""
    by_model: dict[str, list[dict]] = defaultdict(list)
    for path in paths:
        for row in read_jsonl(path, "predictions file", FIX, PredictionRow):
            record = row.model_dump()
            name = record.get("model") or Path(path).stem
            record["dataset"] = record.get("dataset") or Path(path).stem
            record["group"] = record.get("group") or record["dataset"]
            by_model[name].append(record)
    if not by_model:
        raise UserError(f"no predictions in {', '.join(map(str, paths))}; {FIX}")
    return dict(by_model)


def evaluate_rows(
    rows: list[dict],
    *,
    space: SentenceSpace,
    judge=None,
    question: str = OFFICIAL_QUESTION,
    li_wrap: bool = False,
    judge_batch: int = 16,
    judge_mode: str = "generate",
) -> tuple[dict, dict]:
    """Per-row scores and their aggregate for one model's rows."""
    predictions = [r["prediction"] for r in rows]
    labels = [r["label"] for r in rows]
    scores = score_rows(predictions, labels, space=space, question=question, judge=None)
    if judge is not None:
        from vlmkit.classify.openworld_metrics import llm_inclusion

        judged = wrap_lists(predictions, li_wrap_template()) if li_wrap else predictions
        scores["li"], scores["li_raw"] = llm_inclusion(judged, labels, judge, question=question, batch_size=judge_batch, mode=judge_mode)
    return scores, aggregate(scores, [r["dataset"] for r in rows], [r["group"] for r in rows])


def _item_key(row: dict, position: int):
    return (row["dataset"], row.get("id") if row.get("id") is not None else row.get("path") or position)


def elo_ratings(by_model: dict[str, list[dict]], per_row: dict[str, dict], opts: ScoreOptions, judge=None) -> dict:
    """Per dataset, Elo over the items every model answered."""
    keyed = {m: {_item_key(r, i): i for i, r in enumerate(rows)} for m, rows in by_model.items()}
    common = set.intersection(*(set(k) for k in keyed.values()))
    players = sorted(by_model)
    out = {}
    for dataset in sorted({key[0] for key in common}):
        items = sorted((k for k in common if k[0] == dataset), key=str)
        if not items or opts.elo_games == 0:
            continue
        games = elo.sample_games(len(items), players, opts.elo_games, seed=opts.seed)
        if judge is not None:
            answers = {m: [by_model[m][keyed[m][k]]["prediction"] for k in items] for m in players}
            targets = [by_model[players[0]][keyed[players[0]][k]]["label"] for k in items]
            games, _ = elo.judge_outcomes(games, answers, targets, judge, batch_size=opts.batch_size)
        else:
            similarity = {m: per_row[m]["ss"][[keyed[m][k] for k in items]] for m in players}
            games = elo.similarity_outcomes(games, similarity)
        ratings = elo.bootstrap(games, players, rounds=opts.elo_rounds, mode=opts.elo_bootstrap, k=opts.elo_k, seed=opts.seed)
        wins = sum(g.score == 1.0 for g in games), sum(g.score == 0.5 for g in games), sum(g.score == 0.0 for g in games)
        out[dataset] = {"items": len(items), "games": len(games), "a_wins_draws_losses": list(wins), "ratings": ratings}
    return out


def run_score(opts: ScoreOptions) -> Path:
    from vlmkit.classify.openworld_report import score_report
    from vlmkit.runs.files import atomic_write_text

    run = Run(opts.out, "openworld score", opts.model_dump(mode="json"), seed=opts.seed)
    by_model = read_predictions(opts.predictions)  # every file read before any model loads
    judge = opts.load_chat(opts.judge, "judging") if opts.judge else None
    space = SentenceSpace()
    models, per_row = {}, {}
    with run.timer("score"):
        for name, rows in by_model.items():
            per_row[name], models[name] = evaluate_rows(
                rows,
                space=space,
                judge=judge,
                question=opts.question,
                li_wrap=opts.li_wrap,
                judge_batch=opts.batch_size,
                judge_mode=opts.judge_mode,
            )
    result: dict = {"models": models}
    if len(models) == 1:
        result.update(next(iter(models.values())))
    if len(models) >= 2:
        with run.timer("elo"):
            result["elo"] = elo_ratings(by_model, per_row, opts, judge)
        result["elo_criterion"] = f"judge {opts.judge}" if judge else "semantic similarity, margin 0.05"
    result.update(
        judge=opts.judge,
        judge_mode=opts.judge_mode if judge else None,
        li_prompt=judge_template("li") if judge else None,
        li_question=opts.question,
        li_wrap=li_wrap_template() if opts.li_wrap else None,
    )
    if judge is not None:
        run.info["judge"] = {"name": judge.name, "fingerprint": judge.fingerprint, "cache": judge.stats()}
    lines = []
    for name, rows in by_model.items():
        for i, row in enumerate(rows):
            scores = {k: v[i] for k, v in per_row[name].items()}
            lines.append({"model": name, "dataset": row["dataset"], "prediction": row["prediction"], "label": row["label"], **scores})
    import json

    from vlmkit.runs.files import to_jsonable

    opts.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(opts.out / "scores.jsonl", "".join(json.dumps(to_jsonable(line)) + "\n" for line in lines))
    return run.finish(result, score_report(result))
