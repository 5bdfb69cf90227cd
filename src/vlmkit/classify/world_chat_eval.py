"""``vlmkit world eval-chat``: how well a chat model sees and talks about the shapes world.

On a fresh world split (``--seed`` picks the world seed; ``embedded-chat`` trains on seed 0 and
validates on seed 1) it generates ``n`` ground-truth conversations per task (see
:mod:`vlmkit.data.world_chat`), asks the model greedily and scores the reply:

- ``color`` ... ``background``, ``yesno``, ``mcq``, ``count``, ``multiturn``: the reply's first
  word equals the answer (``count`` also takes digits);
- ``name_exact``: the reply is exactly ``a <size> <color> <texture> <shape>``;
  ``name_attributes``: the mean fraction of those four attributes that the reply states correctly
  (a word of the right attribute family, right value);
- ``icl_4shot``: four labelled images (labels are nonce words held out of training), then a query
  that shares its shape with one of them; the reply's first word must be that label (chance 0.25).

Writes ``result.json`` (``tasks.<task>.accuracy`` and ``n``), ``examples.jsonl`` (every question,
answer and reply), ``report.html`` (example images with their conversations) and ``run.json``.
"""

from __future__ import annotations

import base64
import io
import json
from html import escape
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from vlmkit.data import world as w
from vlmkit.data import world_chat as wc
from vlmkit.report import html
from vlmkit.runs.files import atomic_write_text
from vlmkit.runs.options import RunOptions
from vlmkit.runs.progress import track
from vlmkit.runs.record import Run

EVAL_TASKS = ("color", "shape", "size", "texture", "position", "background", "name", "yesno", "mcq", "count", "icl_4shot", "multiturn")
DIGITS = {"1": "one", "2": "two", "3": "three"}
DEFAULT_CHAT_MODEL = "embedded-chat"


class WorldChatEvalOptions(RunOptions):
    model: str = DEFAULT_CHAT_MODEL
    n: int = 500
    seed: int = 1000
    max_new_tokens: int = 12
    backend: Literal["auto", "hf", "numpy"] = "auto"  # "auto": NumPy where it applies (same answers, faster)


def eval_examples(n: int, seed: int) -> dict[str, list[wc.Example]]:
    """``n`` conversations per task on world ``seed`` (fresh scenes; ICL with held-out labels)."""
    rng = np.random.default_rng([seed, 7])
    source = wc.SceneSource(seed, rng)
    _, heldout = wc.nonce_split()
    examples = {}
    for task in EVAL_TASKS:
        if task == "icl_4shot":
            examples[task] = [wc.make_example("icl", source, rng, heldout, ways=4) for _ in range(n)]
        else:
            examples[task] = [wc.make_example(task, source, rng, heldout) for _ in range(n)]
    return examples


def first_word(reply: str) -> str:
    words = reply.lower().replace(".", " ").replace(",", " ").split()
    return words[0] if words else ""


def name_scores(reply: str, attributes: dict) -> tuple[bool, float]:
    """(exact, fraction right): each of size, colour, texture, shape counts as right when the
    reply names the true value and no other value of that attribute."""
    words = reply.lower().split()
    exact = " ".join(words) == wc.name_answer(attributes)
    right = 0
    for name in wc.NAME_ATTRIBUTES:
        said = {v for v in w.ATTRIBUTES[name] if v in words}
        right += said == {attributes[name]}
    return exact, right / len(wc.NAME_ATTRIBUTES)


def score(task: str, example: wc.Example, reply: str) -> dict[str, float]:
    """Per-example scores keyed by the result's task names."""
    if task == "name":
        exact, fraction = name_scores(reply, example.meta["attributes"])
        return {"name_exact": float(exact), "name_attributes": fraction}
    word = first_word(reply)
    if task == "count":
        word = DIGITS.get(word, word)
    return {task: float(word == example.answer)}


def to_messages(turns: list[wc.Turn], images: dict[wc.SceneRef, Image.Image]):
    """World turns -> :class:`vlmkit.models.chat.Message` list (scenes rendered to PIL)."""
    from vlmkit.models.chat import Message

    return [Message(t.role, tuple(images[p] if isinstance(p, wc.SceneRef) else p for p in t.parts)) for t in turns]


def _png(image: Image.Image, side: int = 96) -> str:
    buffer = io.BytesIO()
    image.resize((side, side)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _example_html(example: wc.Example, reply: str, images: dict) -> str:
    rows = []
    for turn in example.prompt:
        parts = "".join(
            f'<img src="{_png(images[p], 64)}" style="margin:2px;vertical-align:middle">'
            if isinstance(p, wc.SceneRef)
            else f" {escape(p)} "
            for p in turn.parts
        )
        rows.append(f"<div><b>{turn.role}</b>: {parts}</div>")
    scores = score(example.task, example, reply)
    ok = "&#10003;" if scores.get(example.task, scores.get("name_exact")) else "&#10007;"
    rows.append(f"<div><b>model</b>: {escape(reply)} &nbsp; <i>(truth: {escape(example.answer)})</i> {ok}</div>")
    return '<div style="border:1px solid #ccc;margin:6px;padding:6px">' + "".join(rows) + "</div>"


def run_world_chat_eval(opts: WorldChatEvalOptions) -> Path:
    out = Path(opts.out)
    run = Run(out, "world eval-chat", opts.model_dump(mode="json"), seed=opts.seed)
    with run.timer("load"):
        from vlmkit.models.chat_registry import load_chat_model

        model = load_chat_model(opts.model, device=opts.resolved_device(), backend=opts.backend)
    examples = eval_examples(opts.n, opts.seed)
    replies: dict[str, list[str]] = {}
    images_cache: dict[wc.SceneRef, Image.Image] = {}
    for task, items in examples.items():
        conversations = []
        for example in items:
            for ref in wc.turn_images(example.prompt):
                if ref not in images_cache:
                    images_cache[ref] = Image.fromarray(wc.render_scene(ref))
            conversations.append(to_messages(example.prompt, images_cache))
        replies[task] = []
        batches = range(0, len(conversations), opts.batch_size)
        for start in track(batches, f"asking {task}", total=len(batches)):
            replies[task] += model.generate(
                conversations[start : start + opts.batch_size], max_new_tokens=opts.max_new_tokens, temperature=0.0, seed=opts.seed
            )
    tasks: dict[str, dict] = {}
    rows = []
    for task, items in examples.items():
        per = [score(task, e, r) for e, r in zip(items, replies[task], strict=True)]
        for key in per[0]:
            tasks[key] = {"accuracy": float(np.mean([p[key] for p in per])), "n": len(per)}
        rows += [
            {
                "task": task,
                "prompt": [[t.role, [p if isinstance(p, str) else "<image>" for p in t.parts]] for t in e.prompt],
                "answer": e.answer,
                "reply": r,
                **s,
            }
            for e, r, s in zip(items, replies[task], per, strict=True)
        ]
    order = [
        t
        for t in (
            "color",
            "shape",
            "size",
            "texture",
            "position",
            "background",
            "name_exact",
            "name_attributes",
            "yesno",
            "mcq",
            "count",
            "icl_4shot",
            "multiturn",
        )
        if t in tasks
    ]
    result = {"model": opts.model, "world_seed": opts.seed, "n": opts.n, "tasks": {t: tasks[t] for t in order}}
    atomic_write_text(out / "examples.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    shown = []
    for task, items in examples.items():
        blocks = [_example_html(e, r, images_cache) for e, r in list(zip(items, replies[task], strict=True))[:4]]
        shown.append(html.section(task, *blocks))
    summary = html.table(["task", "accuracy", "n"], [[t, tasks[t]["accuracy"], tasks[t]["n"]] for t in order])
    page = html.page(f"eval-chat: {opts.model} on world seed {opts.seed}", html.section("accuracy", summary), *shown)
    return run.finish(result, page)
