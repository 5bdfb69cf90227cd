"""The MCQA protocol: each episode as a Markov decision process (arXiv 2603.19466, §3.2).

At every turn the model sees only the current frame and the prompt (no conversation history,
the paper's default): the question, the optional hint, "Choose from the following options", the
lettered options (valid requests, abstain, four categories, in the record's order) and "Please
only return one of the options". Greedy decoding, at most 50 new tokens. Active episodes are
batched turn by turn, so a batch holds the same turn of many episodes.
"""

from __future__ import annotations

from collections.abc import Sequence

from vlmkit.models.chat import ChatModel, Message, user
from vlmkit.proactive.answers import multi_choice_prompt
from vlmkit.proactive.envs import Environment

MAX_NEW_TOKENS = 50


def thumbnail(image, side: int = 96):
    small = image.copy()
    small.thumbnail((side, side))
    return small


def turn_conversation(env: Environment, hint: bool = False) -> list[Message]:
    """The single-turn conversation an episode shows in its current state."""
    return [user(env.frame(), multi_choice_prompt(env.prompt(hint), env.shown_options()))]


def run_mcqa(
    model: ChatModel,
    episodes: Sequence[Environment],
    *,
    hint: bool = False,
    batch_size: int = 16,
    max_new_tokens: int = MAX_NEW_TOKENS,
    temperature: float = 0.0,
    seed: int = 0,
    progress=None,
    keep_frames: bool = False,
) -> list[Environment]:
    """Play every episode to its end; returns them (finished, with their turns recorded).

    Args:
        model: any :class:`ChatModel` with the ``"images"`` capability.
        episodes: fresh environments (they are advanced in place).
        hint: append the scenario's hint to the question.
        temperature: 0 is the protocol (greedy); the RL recipe samples with > 0.
        progress: optional callable ``(finished, total)`` called after every turn batch.
        keep_frames: keep a 96-pixel copy of every frame shown (``Turn.thumb``), for reports.
    """
    active = [e for e in episodes if not e.done]
    round_ = 0
    while active:
        for start in range(0, len(active), batch_size):
            chunk = active[start : start + batch_size]
            conversations = [turn_conversation(e, hint) for e in chunk]
            replies = model.generate(
                conversations, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed + 7919 * round_ + start
            )
            for env, conversation, reply in zip(chunk, conversations, replies, strict=True):
                turn = env.step(reply, hint)
                if keep_frames:
                    turn.thumb = thumbnail(conversation[0].images[0])
        round_ += 1
        active = [e for e in active if not e.done]
        if progress is not None:
            progress(len(episodes) - len(active), len(episodes))
    return list(episodes)


def run_reference(
    model: ChatModel, episodes: Sequence[Environment], *, batch_size: int = 16, max_new_tokens: int = MAX_NEW_TOKENS
) -> list[bool]:
    """The paper's reference-frame control: one turn on the informative frame, the four
    categories as the only options; whether each reply names the correct category."""
    from vlmkit.proactive.answers import judge

    out = []
    for start in range(0, len(episodes), batch_size):
        chunk = list(episodes[start : start + batch_size])
        conversations = [[user(e.reference_frame(), multi_choice_prompt(e.question, e.categories))] for e in chunk]
        replies = model.generate(conversations, max_new_tokens=max_new_tokens, temperature=0.0, seed=0)
        out += [judge(r, [e.answer], e.categories, 0)[0] == "correct" for e, r in zip(chunk, replies, strict=True)]
    return out
