"""The prompt sets SEM and the projection baselines need, shipped as data (``debias/prompts/``).

- neutral reference prompts: ``neutral.txt`` (310 generic prompts) or any text file;
- bias prompts: ``bias.json``, attribute -> class -> 20 prompts, for ``gender``, ``race``, ``age``
  and the shapes world's nuisances ``world-background``, ``world-color``, ``world-texture``,
  ``world-position``, ``world-size``; or a JSON file of the same shape;
- paraphrases of the queries: a JSON file ``{query: [paraphrase, ...]}`` supplied by the user.

Rebuilt by ``scripts/build_prompt_sets.py``.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path

from vlmkit.errors import UserError
from vlmkit.interpret.vocab import parse_vocabulary
from vlmkit.runs.readers import read_json, read_text


def _read(name: str) -> str:
    return resources.files("vlmkit.debias").joinpath(f"prompts/{name}").read_text()


def neutral_prompts(path: str | Path | None = None) -> list[str]:
    fix = "pass a text file with at least 10 neutral prompts, one per line"
    text = _read("neutral.txt") if path is None else read_text(path, "neutral prompt file", fix)
    prompts = parse_vocabulary(text)
    if len(prompts) < 10:
        where = f"{path} has" if path is not None else "the shipped set has"
        raise UserError(f"{where} {len(prompts)} distinct neutral prompts; the neutral reference needs at least 10, one per line")
    return prompts


@cache
def _shipped_bias() -> dict:
    return {k: v for k, v in json.loads(_read("bias.json")).items() if not k.startswith("_")}


def bias_attributes() -> list[str]:
    return list(_shipped_bias())


def bias_prompts(attributes: list[str], path: str | Path | None = None) -> dict[str, dict[str, list[str]]]:
    """The bias prompts of ``attributes`` (from ``path`` or the shipped set)."""
    if path is None:
        source = _shipped_bias()
    else:
        table = read_json(path, "bias prompt file", "write JSON {attribute: {class: [prompt, ...]}}", dict[str, dict[str, list[str]] | str])
        source = {k: v for k, v in table.items() if not k.startswith("_")}
        if any(isinstance(v, str) for v in source.values()):
            raise UserError(f"{path}: each attribute must map classes to lists of prompts; write JSON {{attribute: {{class: [prompt, "
                            "...]}}")
    unknown = [a for a in attributes if a not in source]
    if unknown:
        raise UserError(f"no bias prompts for {', '.join(unknown)}; known attributes: {', '.join(source)}")
    out = {a: source[a] for a in attributes}
    for attribute, classes in out.items():
        if len(classes) < 2 or not all(isinstance(p, list) and p for p in classes.values()):
            raise UserError(f"bias attribute {attribute!r} needs at least two classes, each with a list of prompts")
    return out


def paraphrases(path: str | Path, queries: list[str]) -> list[list[str]]:
    """One list of paraphrases per query from a JSON ``{query: [paraphrase, ...]}`` file."""
    table = read_json(path, "paraphrase file", "write JSON {query: [paraphrase, ...]}", dict[str, list[str]])
    missing = [q for q in queries if not table.get(q)]
    if missing:
        raise UserError(f"{path} has no paraphrases for {missing[0]!r} ({len(missing)} queries in all); map each query to a list of "
                        "paraphrases")
    return [list(table[q]) for q in queries]
