"""Reading a model's MCQA reply against lettered options (ProactiveBench, arXiv 2603.19466, §3.2).

The rules are the official release's (``tdemin16/proactivebench``, ``BaseEnvironment._evaluate``):

1. *full answer*: drop everything up to a capital letter followed by a dot (``"B. rotate"`` ->
   ``"rotate"``), lower-case, strip and remove every space; compare with the options written the
   same way;
2. *letter*: otherwise the text before the first dot, stripped and lower-cased, is a letter when
   it is one character long; letters count from ``shift`` (categories follow the proactive
   options in the prompt, so their letters start after them).

Each option list is judged on its own: :func:`judge` says ``"correct"`` (the reply picks one of
``correct``), ``"wrong"`` (it picks another listed option) or ``"mismatch"`` (neither).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_PREFIX = re.compile(r"^.*[A-Z]\.\s*")


def full_form(text: str) -> str:
    """``text`` without a leading ``"X."`` label, lower-cased, with no spaces at all."""
    return _PREFIX.sub("", text).lower().strip().replace(" ", "")


def letter_form(text: str) -> str:
    """The reply's letter (lower-case) or ``"#"`` when the text before its first dot is longer."""
    head = text.split(".")[0].lower().strip()
    return "#" if len(head) > 1 else head


def letter(index: int) -> str:
    """``0 -> "A"``: the label of the ``index``-th option in the prompt."""
    return chr(65 + index)


def judge(reply: str, correct: Sequence[str], options: Sequence[str], shift: int = 0) -> tuple[str, str]:
    """``(verdict, chosen option)``: verdict ``"correct"``, ``"wrong"`` or ``"mismatch"`` (then ``""``).

    Args:
        reply: the model's text.
        correct: the options that count as right in this state (a subset of ``options``).
        options: the options of this group, in prompt order.
        shift: how many options precede this group in the prompt (its first letter is ``letter(shift)``).
    """
    full = full_form(reply)
    forms = [full_form(o) for o in options]
    right = {full_form(c) for c in correct}
    if full in right:
        return "correct", options[forms.index(full)]
    if full in forms:
        return "wrong", options[forms.index(full)]
    said = letter_form(reply)
    letters = [letter(i + shift).lower() for i in range(len(options))]
    right_letters = {letter(list(options).index(c) + shift).lower() for c in correct}
    if said in right_letters:
        return "correct", options[letters.index(said)]
    if said in letters:
        return "wrong", options[letters.index(said)]
    return "mismatch", ""


def multi_choice_prompt(question: str, options: Sequence[str], short_answer: bool = True) -> str:
    """The release's MCQA prompt: question, header, lettered options, closing instruction."""
    text = question + " Choose from the following options. Options:\n"
    text += "".join(f"{letter(i)}. {option}\n" for i, option in enumerate(options))
    if short_answer:
        text += "Please only return one of the options without any other words."
    return text
