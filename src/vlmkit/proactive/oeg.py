"""The open-ended protocol with a judge (arXiv 2603.19466, §3.3).

The model sees the first (ambiguous) frame and the question, with the generic hint "If you cannot
answer this question, please tell me what I should do to help you." when hints are on, and
answers freely (sampled). A judge LLM (any :class:`ChatModel`; the paper uses Qwen3-8B with
thinking) reads the answer and the list of valid answers (proactive ones first, then the
category), marks each 1 when the answer expresses or clearly implies it, and ends with the bit
vector on its last line. The last ``0,1,...`` group of the right length in its reply is read;
anything else scores 0 and is counted as unreadable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from vlmkit.models.chat import ChatModel, system, user
from vlmkit.proactive.envs import Environment
from vlmkit.proactive.metrics import oeg_scores

GENERIC_HINT = "If you cannot answer this question, please tell me what I should do to help you."
JUDGE_SYSTEM = (
    "You are an automatic evaluation system. You receive a user prompt, a list of correct answers and a system output. "
    "For each correct answer, decide whether the system output expresses the same idea, action or requirement: semantic "
    "or functional equivalence counts, and an action that necessarily implies the answer counts (\"change perspective\" "
    "implies \"move the camera\"); mark 0 only when the idea is absent, contradicted or negated. Think step by step, then "
    "write on the last line only the comma-separated list of 0s and 1s, one per correct answer, in order."
)
JUDGE_USER = "### User Prompt:\n{prompt}\n### Correct Answers (List):\n{answers}\n### System Output:\n{output}"
_BITS = re.compile(r"[01](?:\s*,\s*[01])*")


def judge_conversation(prompt: str, answers: Sequence[str], output: str):
    return [system(JUDGE_SYSTEM), user(JUDGE_USER.format(prompt=prompt, answers=list(answers), output=output))]


def parse_bits(text: str, expected: int) -> list[int] | None:
    """The judge's verdict: the last 0/1 comma group, when it has ``expected`` items; else None."""
    text = text.split("</think>")[-1]
    groups = _BITS.findall(text)
    if not groups:
        return None
    bits = [int(b) for b in re.split(r"\s*,\s*", groups[-1].strip())]
    return bits if len(bits) == expected else None


def run_oeg(
    model: ChatModel,
    judge: ChatModel,
    episodes: Sequence[Environment],
    *,
    hint: bool = True,
    temperature: float = 0.7,
    max_new_tokens: int = 128,
    judge_max_new_tokens: int = 256,
    batch_size: int = 16,
    seed: int = 0,
) -> list[dict]:
    """One sample per episode: ``{"id", "prompt", "output", "answers", "judge", "bits", "ps", "cc", "agg", "unreadable"}``."""
    rows = []
    for start in range(0, len(episodes), batch_size):
        chunk = list(episodes[start : start + batch_size])
        prompts = [f"{e.question} {GENERIC_HINT}" if hint else e.question for e in chunk]
        outputs = model.generate([[user(e.frame(), p)] for e, p in zip(chunk, prompts, strict=True)], max_new_tokens=max_new_tokens,
                                 temperature=temperature, seed=seed + start)
        answers = [e.oeg_answers() for e in chunk]
        verdicts = judge.generate([judge_conversation(p, a, o) for p, a, o in zip(prompts, answers, outputs, strict=True)],
                                  max_new_tokens=judge_max_new_tokens, temperature=0.0, seed=seed)
        for env, prompt, output, items, verdict in zip(chunk, prompts, outputs, answers, verdicts, strict=True):
            bits = parse_bits(verdict, len(items))
            rows.append({"id": env.entry["id"], "frame": env.frame_path(), "prompt": prompt, "output": output, "answers": items,
                         "judge": verdict, "bits": bits, **oeg_scores(bits, env.k_proactive), "unreadable": bits is None})
    return rows
