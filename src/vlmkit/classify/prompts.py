"""Prompts as data: the open-world question variants, the judge prompts and the CIRCLE wrapper.

Every prompt lives in ``classify/data/`` and is recorded in each run's ``run.json``. The
open-world variants are verbatim from the official task configs of the protocol
(Conti et al., "LMMs as Open-World Image Classifiers", arXiv 2503.21851; ``altndrr/lmms-owc``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from vlmkit.errors import UserError

#: the question the official LI judge prompt quotes, whatever prompt produced the answer
OFFICIAL_QUESTION = "What type of object is in this photo?"


def _text(name: str) -> str:
    return resources.files("vlmkit.classify").joinpath(f"data/{name}").read_text(encoding="utf-8")


@dataclass(frozen=True)
class OpenWorldPrompt:
    """One open-world question variant: one turn (``rounds`` of length 1) or a multi-round
    dialogue whose last answer is the prediction."""

    name: str
    rounds: tuple[str, ...]
    max_new_tokens: int

    @property
    def question(self) -> str:
        return self.rounds[0]


@cache
def _variants() -> dict:
    return {k: v for k, v in json.loads(_text("openworld.json")).items() if not k.startswith("_")}


def prompt_names() -> list[str]:
    return list(_variants())


def openworld_prompt(name: str, domain: str = "object") -> OpenWorldPrompt:
    """The variant ``name`` (``base``, ``generic``, ``specific``, ``cot``, ...); ``{domain}``
    is filled with the dataset's domain noun."""
    variants = _variants()
    if name not in variants:
        raise UserError(f"unknown --prompt {name!r}; choose one of {', '.join(variants)}")
    spec = variants[name]
    rounds = tuple(spec["rounds"]) if "rounds" in spec else (spec["prompt"],)
    return OpenWorldPrompt(name, tuple(r.replace("{domain}", domain) for r in rounds), int(spec["max_new_tokens"]))


@cache
def judge_template(kind: str = "li") -> str:
    """The judge prompt with ``{question}``/``{answer}``/``{target}`` (``li``) or
    ``{answer_a}``/``{answer_b}``/``{target}`` (``elo``) fields."""
    return _text(f"judge_{kind}.txt").strip()


@cache
def li_wrap_template() -> str:
    """CIRCLE's sentence around a comma-separated label list before LI judging (``{answer}``)."""
    return _text("li_wrap.txt").strip()


@cache
def concept_skip_words() -> frozenset[str]:
    lines = _text("concept_skip_words.txt").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("# "))


def fill(template: str, **fields: str) -> str:
    """``template`` with ``{name}`` fields replaced literally (answers may contain braces)."""
    for key, value in fields.items():
        template = template.replace("{" + key + "}", value)
    return template
