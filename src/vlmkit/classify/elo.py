"""Elo ratings of open-world classifiers from pairwise games judged against the label.

Conti et al. (arXiv 2503.21851) rank LMMs by sampling games (a test item and two models) and
letting a judge LLM decide which answer matches the target better; ratings follow the standard
logistic Elo update (official ``eval_ratings.py``):

    E_A = 1 / (1 + 10^((R_B - R_A) / 400)),   R_A += K (S_A - E_A),   R_B -= K (S_A - E_A)

(the official zero-sum option averages the two changes, which is the same thing because
``E_B = 1 - E_A``). Defaults: initial rating 1000, K = 16, 10,000 games, 100 bootstrap rounds.
A judge reply ``"1"`` means A wins, ``"0"`` B wins, anything else is a draw (0.5), as in the
official code. Without a judge, the official ``semantic_similarity`` criterion decides: A wins
when its SS to the target exceeds B's by more than 0.05, loses when it is 0.05 lower, else draw.

Bootstrap: ``resample`` (default, the spec's reading) replays ``n`` games drawn with replacement
in a random order per round; ``shards`` (the official script) shuffles the games once and
replays each of ``rounds`` disjoint shards. Reported: the online rating (all games in order),
and the mean, median and 2.5/97.5 percentiles over rounds.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from vlmkit.classify.prompts import fill, judge_template


@dataclass(frozen=True)
class Game:
    """Item ``item`` played between models ``a`` and ``b``; ``score`` is A's outcome (1, 0.5, 0)."""

    item: int
    a: str
    b: str
    score: float = 0.5


def expected(rating_a: float, rating_b: float) -> float:
    """A's expected score against B."""
    return 1.0 / (1.0 + 10.0 ** ((rating_b - rating_a) / 400.0))


def update(rating_a: float, rating_b: float, score_a: float, k: float = 16.0) -> tuple[float, float]:
    """New (R_A, R_B) after one game (zero-sum)."""
    change = k * (score_a - expected(rating_a, rating_b))
    return rating_a + change, rating_b - change


def play(games: Sequence[Game], players: Sequence[str], *, initial: float = 1000.0, k: float = 16.0) -> dict[str, float]:
    """Ratings after replaying ``games`` in order from ``initial``."""
    ratings = {p: float(initial) for p in players}
    for game in games:
        ratings[game.a], ratings[game.b] = update(ratings[game.a], ratings[game.b], game.score, k)
    return ratings


def sample_games(n_items: int, players: Sequence[str], n_games: int, seed: int = 0) -> list[Game]:
    """``n_games`` uniform (item, unordered pair of players) draws, A/B order as listed."""
    if len(players) < 2 or n_items < 1:
        raise ValueError("Elo needs at least two players and one item")
    rng = random.Random(seed)
    pairs = list(combinations(players, 2))
    return [Game(rng.randrange(n_items), *rng.choice(pairs)) for _ in range(n_games)]


def judge_outcomes(
    games: Sequence[Game],
    answers: dict[str, Sequence[str]],
    targets: Sequence[str],
    judge,
    *,
    batch_size: int = 16,
    max_new_tokens: int = 16,
) -> tuple[list[Game], list[str]]:
    """Score each game with a judge LLM (``"1"``: A wins, ``"0"``: B wins, else a draw)."""
    from vlmkit.models.chat import user

    template = judge_template("elo")
    conversations = [
        [user(fill(template, answer_a=answers[g.a][g.item], answer_b=answers[g.b][g.item], target=targets[g.item]))] for g in games
    ]
    outputs: list[str] = []
    for start in range(0, len(conversations), batch_size):
        outputs += judge.generate(conversations[start : start + batch_size], max_new_tokens=max_new_tokens, temperature=0.0)
    scores = [{"1": 1.0, "0": 0.0}.get(o.strip(), 0.5) for o in outputs]
    return [Game(g.item, g.a, g.b, s) for g, s in zip(games, scores, strict=True)], outputs


def similarity_outcomes(games: Sequence[Game], similarity: dict[str, np.ndarray], threshold: float = 0.05) -> list[Game]:
    """Score each game by SS to the target: a margin above ``threshold`` wins, else a draw."""
    out = []
    for g in games:
        diff = float(similarity[g.a][g.item] - similarity[g.b][g.item])
        out.append(Game(g.item, g.a, g.b, 1.0 if diff > threshold else 0.0 if diff < -threshold else 0.5))
    return out


def bootstrap(
    games: Sequence[Game],
    players: Sequence[str],
    *,
    rounds: int = 100,
    mode: str = "resample",
    initial: float = 1000.0,
    k: float = 16.0,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Per player: ``online`` rating and ``mean``/``median``/``low``/``high`` (2.5/97.5 %) over rounds."""
    if mode not in ("resample", "shards"):
        raise ValueError("mode must be resample or shards")
    rng = np.random.default_rng(seed)
    games = list(games)
    per_round = []
    if mode == "resample":
        for _ in range(rounds):
            order = rng.integers(0, len(games), len(games))
            per_round.append(play([games[i] for i in order], players, initial=initial, k=k))
    else:
        order = rng.permutation(len(games))
        for shard in range(rounds):
            per_round.append(play([games[i] for i in order[shard::rounds]], players, initial=initial, k=k))
    online = play(games, players, initial=initial, k=k)
    out = {}
    for p in players:
        values = np.asarray([r[p] for r in per_round])
        out[p] = {"online": online[p], "mean": float(values.mean()), "median": float(np.median(values)),
                  "low": float(np.percentile(values, 2.5)), "high": float(np.percentile(values, 97.5))}
    return out
