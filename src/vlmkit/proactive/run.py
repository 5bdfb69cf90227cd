"""``vlmkit proactive run``: ProactiveBench's MCQA or OEG protocol over published or world scenarios.

Writes ``result.json`` (``metrics.<scenario>`` with ``acc``, ``psr``, ``accuracy``,
``proactive_rate``... for MCQA, ``ps``, ``cc``, ``agg`` for OEG; ``average`` over scenarios and,
for the release, ``average_without_coco``: the paper suspects COCO is contaminated),
``episodes.jsonl`` (every turn of every episode, or every OEG sample with the judge's reply),
``report.html`` (tables, and episodes replayed turn by turn with their frames) and ``run.json``.
"""

from __future__ import annotations

import json
import random
from typing import Literal

from pydantic import Field, field_validator

from vlmkit.classify.chat_options import ChatRunOptions
from vlmkit.errors import UserError
from vlmkit.proactive import metrics as pm
from vlmkit.proactive.published import SCENARIOS, environments, load_records, resolve
from vlmkit.proactive.world import WORLD_SCENARIOS, world_environments
from vlmkit.runs.files import atomic_write_text
from vlmkit.runs.record import Run

DEFAULT_JUDGE = "smollm2-135m"


class ProactiveOptions(ChatRunOptions):
    scenarios: str = "all"
    data: str = "world"
    protocol: Literal["mcqa", "oeg"] = "mcqa"
    hint: bool = False
    n: int | None = Field(None, ge=1)
    judge: str = DEFAULT_JUDGE
    temperature: float = Field(0.7, ge=0.0)
    max_new_tokens: int = Field(50, ge=1)
    batch_size: int = Field(16, ge=1)

    @field_validator("data")
    @classmethod
    def _data(cls, value: str) -> str:
        from pathlib import Path

        if value != "world" and not Path(value).is_dir():
            raise ValueError(f"{value} is not a directory; pass the extracted ProactiveBench test folder or world")
        return value

    def names(self) -> list[str]:
        return resolve(self.scenarios, list(WORLD_SCENARIOS) if self.data == "world" else list(SCENARIOS))


def episodes_for(opts: ProactiveOptions, scenario: str, seed: int | None = None) -> list:
    """Fresh environments: ``n`` world episodes (default 50), or the release's kept episodes
    (a seeded random ``n`` of them when ``n`` is given; OEG defaults to 100, as the paper)."""
    seed = opts.seed if seed is None else seed
    if opts.data == "world":
        return world_environments(scenario, opts.n or 50, seed=seed)
    envs = environments(opts.data, scenario)
    n = opts.n or (100 if opts.protocol == "oeg" else None)
    if n is not None and n < len(envs):
        envs = random.Random(seed).sample(envs, n)
    if not envs:
        raise UserError(
            f"no kept {scenario} episode in {opts.data}; check the file is the release's {SCENARIOS[scenario][0]}_preprocessed.jsonl"
        )
    return envs


def turn_rows(scenario: str, env) -> dict:
    return {"scenario": scenario, "id": env.entry["id"], "answer": env.answer, "success": env.success, "turns": env.num_turns,
            "proactive_moves": env.proactive_moves,
            "steps": [{"frame": t.frame, "reply": t.reply, "action_verdict": t.action_verdict, "category_verdict": t.category_verdict,
                       "action": t.action} for t in env.turns]}


def summary(per: dict[str, dict], keys: list[str]) -> dict:
    out = {"average": pm.average(per, keys)}
    if "COCO" in per:
        out["average_without_coco"] = pm.average(per, keys, skip=["COCO"])
    return out


def run_proactive(opts: ProactiveOptions):
    from vlmkit.proactive.report import mcqa_report, oeg_report

    names = opts.names()
    if opts.data != "world":  # check every episode file before the model loads (they are read again when used)
        for name in names:
            load_records(opts.data, name)
    run = Run(opts.out, "proactive run", opts.model_dump(mode="json"), seed=opts.seed)
    model = opts.load_chat(description="proactive")
    config = {"model": opts.model, "data": opts.data, "protocol": opts.protocol, "hint": opts.hint, "n": opts.n, "seed": opts.seed}
    lines = []
    if opts.protocol == "mcqa":
        from vlmkit.proactive.mcqa import run_mcqa

        per, played = {}, {}
        for name in names:
            with run.timer(name):
                envs = run_mcqa(model, episodes_for(opts, name), hint=opts.hint, batch_size=opts.batch_size,
                                max_new_tokens=opts.max_new_tokens, seed=opts.seed, keep_frames=True)
            per[name], played[name] = pm.mcqa_metrics(envs), envs
            lines += [json.dumps(turn_rows(name, e)) for e in envs]
        result = {"protocol": "mcqa", **config, "metrics": per,
                  **summary(per, ["acc", "psr", "accuracy", "proactive_rate"])}
        page = mcqa_report(f"ProactiveBench MCQA: {opts.model}", per, played, config)
    else:
        from vlmkit.proactive.oeg import run_oeg

        judge = opts.load_chat(opts.judge, description="judging")
        per, rows = {}, {}
        for name in names:
            with run.timer(name):
                rows[name] = run_oeg(model, judge, episodes_for(opts, name), hint=opts.hint, temperature=opts.temperature,
                                     batch_size=opts.batch_size, seed=opts.seed)
            per[name] = pm.oeg_metrics(rows[name])
            lines += [json.dumps({"scenario": name, **r}) for r in rows[name]]
        result = {"protocol": "oeg", **config, "judge": opts.judge, "temperature": opts.temperature, "metrics": per,
                  **summary(per, ["ps", "cc", "agg"])}
        page = oeg_report(f"ProactiveBench OEG: {opts.model}", per, rows, {**config, "judge": opts.judge})
    opts.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(opts.out / "episodes.jsonl", "\n".join(lines) + "\n")
    return run.finish(result, page)
