"""Shapes-world conversations with ground truth, for training and evaluating ``embedded-chat``.

Every conversation is generated from a scene whose attributes are known, so every answer is
checkable. A conversation is a list of :class:`Turn` (role and parts); an image part is a
:class:`SceneRef` (world seed, index and kind), rendered to pixels only when needed, so training
can use precomputed image features and evaluation can render PIL images.

Tasks (``TASKS``): attribute questions (``color``, ``shape``, ``size``, ``texture``,
``position``, ``background``), open naming (``name``: "a small red striped star"), yes/no
verification (``yesno``), lettered multiple choice (``mcq``), counting one to three objects
(``count``), in-context labelling with novel words (``icl``: k labelled images, then a query;
the labels are nonce words, see :func:`nonce_words`) and two-turn follow-ups whose answer
depends on the first turn (``multiturn``). Training-only scaffolds (``TRAINING_ONLY_TASKS``):
text-only induction (``text_icl``), repeating key-label pairs (``echo``), and yes/no and lettered
choice with the scene described in words instead of shown (``text_yesno``, ``text_mcq``).

The ICL format fixes the labelled attribute to the shape (the world's category), one shot per
class, labels right after their image: ``<image> dax <image> wug ... <image> what is this ?``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from vlmkit.data import world as w
from vlmkit.data.world_sample import POSITION_PHRASES, sample_image

ATTRIBUTE_TASKS = ("color", "shape", "size", "texture", "position", "background")
TASKS = (*ATTRIBUTE_TASKS, "name", "yesno", "mcq", "count", "icl", "text_icl", "multiturn", "echo", "text_yesno", "text_mcq")
TRAINING_ONLY_TASKS = ("text_icl", "echo", "text_yesno", "text_mcq")
NAME_ATTRIBUTES = ("size", "color", "texture", "shape")
COUNT_WORDS = ("one", "two", "three")
LETTERS = ("a", "b", "c", "d")

QUESTIONS = {
    "color": ("what color is the shape ?", "what colour is the object ?", "which color is it ?"),
    "shape": ("what shape is this ?", "what shape is the object ?", "which shape is it ?"),
    "size": ("what size is the shape ?", "is the shape small or large ?", "how big is the object ?"),
    "texture": ("what texture does the shape have ?", "what pattern is on the object ?", "what is the texture of the shape ?"),
    "position": ("where is the shape ?", "where is the object in the image ?", "in which part of the image is the shape ?"),
    "background": ("what color is the background ?", "what is the background color ?", "which color is the background ?"),
}
NAME_QUESTIONS = ("what is in the image ?", "what do you see ?", "describe the object .", "what is shown in the picture ?")
COUNT_QUESTIONS = ("how many shapes are there ?", "how many objects are in the image ?", "count the shapes .")
FOLLOW_UPS = {
    "color": ("and its color ?", "what about the color ?"),
    "shape": ("and its shape ?", "what about the shape ?"),
    "size": ("and its size ?", "what about the size ?"),
    "texture": ("and its texture ?", "what about the texture ?"),
    "position": ("and where is it ?", "what about the position ?"),
    "background": ("and the background ?", "what about the background color ?"),
}
SAME_QUESTIONS = {
    "shape": ("is this the same shape ?", "does this one have the same shape ?"),
    "color": ("is this the same color ?", "does this one have the same color ?"),
}
ICL_QUERY = "what is this ?"
ICL_MORE = ("and this ?", "what about this one ?")
ICL_BY_NAME = "which one is the {} ?"
MCQ_SUFFIX = "answer with the letter ."
ECHO_REQUEST = "repeat the words ."


def _subject_and_predicate(attribute: str, value: str) -> tuple[str, str]:
    """``("the shape", "red")``: the subject and predicate of a yes/no question about ``attribute``."""
    if attribute == "shape":
        return "this", f"a {value}"
    if attribute == "position":
        return "the shape", POSITION_PHRASES[value][0]
    if attribute == "background":
        return "the background", value
    return "the shape", value


def _yesno_question(attribute: str, value: str) -> str:
    subject, predicate = _subject_and_predicate(attribute, value)
    return f"is {subject} {predicate} ?"


def describe(attributes: dict) -> str:
    """The whole scene in words (``"a small red striped star on the left , navy background ."``):
    the text-only scaffolds' stand-in for an image, so that, as with an image, the reply must
    first pick out the asked attribute among all of them."""
    return f"{name_answer(attributes)} {POSITION_PHRASES[attributes['position']][0]} , {attributes['background']} background ."


# -- the vocabulary ---------------------------------------------------------------------------

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def nonce_words(n: int = 256, seed: int = 1234) -> list[str]:
    """``n`` distinct pronounceable nonce words (CVCV or CVC), none of them a world word.

    Deterministic in ``seed``. ``embedded-chat`` trains in-context labelling with the first
    ``n - NONCE_HELDOUT`` and keeps the rest unseen, for a true novel-label evaluation.
    """
    rng = np.random.default_rng(seed)
    taken = set(base_words())
    words: list[str] = []
    while len(words) < n:
        c = rng.choice(list(_CONSONANTS), 2)
        v = rng.choice(list(_VOWELS), 2)
        word = c[0] + v[0] + c[1] + (v[1] if rng.random() < 0.6 else "")
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


NONCE_TOTAL = 256
NONCE_HELDOUT = 56


def nonce_split() -> tuple[list[str], list[str]]:
    """(training pool, held-out pool) of nonce labels; the held-out words never appear in training."""
    words = nonce_words(NONCE_TOTAL)
    return words[: NONCE_TOTAL - NONCE_HELDOUT], words[NONCE_TOTAL - NONCE_HELDOUT:]


def base_words() -> list[str]:
    """Every non-nonce word of the world's chat language (sorted, deterministic)."""
    texts = [q for qs in QUESTIONS.values() for q in qs] + list(NAME_QUESTIONS) + list(COUNT_QUESTIONS)
    texts += [q for qs in FOLLOW_UPS.values() for q in qs] + [q for qs in SAME_QUESTIONS.values() for q in qs]
    texts += [ICL_QUERY, *ICL_MORE, ICL_BY_NAME.format(""), MCQ_SUFFIX, ECHO_REQUEST, "options : )", "yes no"]
    texts += [" ".join(COUNT_WORDS), " ".join(LETTERS)]
    texts += [_yesno_question(a, v) for a, values in w.ATTRIBUTES.items() for v in values]
    texts += ["background"]  # describe()'s words: all in the questions already, kept explicit
    texts += [" ".join(values) for values in w.ATTRIBUTES.values()]
    texts += ["0 1 2 3 4 5 6 7 8 9 , . ? ! : ; ' - a an the this that it is are what"]
    return sorted({word for text in texts for word in text.split()})


# -- scenes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneRef:
    """One image: scene ``index`` of world ``seed``; ``kind`` "single" (one object, the usual
    world sampler) or "count" (one to three small objects at distinct positions)."""

    seed: int
    index: int
    kind: str = "single"


def make_scene(ref: SceneRef) -> tuple[w.WorldImage, np.random.Generator]:
    """The scene behind ``ref`` and the generator that renders it."""
    if ref.kind == "single":
        return sample_image(ref.index, ref.seed)
    if ref.kind != "count":
        raise ValueError(f"unknown scene kind {ref.kind!r}")
    rng = np.random.default_rng([ref.seed, ref.index, 3])
    n = int(rng.integers(1, 4))
    positions = rng.choice(list(w.POSITIONS), n, replace=False)
    objects = []
    for position in positions:
        attrs = {name: _pick(rng, w.ATTRIBUTES[name]) for name in ("shape", "color", "texture")}
        x, y = w.POSITIONS[str(position)]
        jitter = rng.uniform(-w.POSITION_JITTER / 2, w.POSITION_JITTER / 2, 2)
        angle = 0.0 if attrs["shape"] == "circle" else float(rng.uniform(-0.25, 0.25))
        rgb = w.jittered_rgb(attrs["color"], rng)
        center = (x + jitter[0], y + jitter[1])
        objects.append(w.WorldObject(size="small", position=str(position), rgb=rgb, center=center, angle=angle, **attrs))
    return w.WorldImage(index=ref.index, objects=objects, background=_pick(rng, w.ATTRIBUTES["background"])), rng


def render_scene(ref: SceneRef, side: int = 96) -> np.ndarray:
    """``(side, side, 3)`` uint8 pixels of ``ref``."""
    scene, rng = make_scene(ref)
    return w.render(scene, side, rng)


def scene_attributes(ref: SceneRef) -> dict:
    """The main object's attributes, the background and ``n_objects``."""
    return make_scene(ref)[0].attributes()


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


# -- conversations ----------------------------------------------------------------------------

Part = str | SceneRef


@dataclass
class Turn:
    """One turn. Training only, for ``embedded-chat``'s lens loss (``embedded_chat_train``),
    which supervises these words at an intermediate layer: ``latent`` (assistant turns), the
    attribute word the reply is decided by (for yes/no and lettered choice one it does not say:
    the perceived colour behind "no" to "is the shape red ?", the value behind a letter);
    ``word_latents`` (user turns), what a word of the text stands for, e.g. each option's
    letter, at the word's last occurrence."""

    role: str  # "user" or "assistant"
    parts: list[Part]
    latent: str | None = None
    word_latents: dict[str, str] | None = None


@dataclass
class Example:
    """A conversation; ``answer`` is the reply the evaluation checks (the last assistant turn,
    which is left out of ``prompt``); ``meta`` holds what the scoring needs."""

    task: str
    turns: list[Turn]
    answer: str
    meta: dict = field(default_factory=dict)

    @property
    def prompt(self) -> list[Turn]:
        """The conversation up to the turn the model must answer."""
        return self.turns[:-1]


class SceneSource:
    """Hands out scene references from world ``seed`` and remembers their attributes.

    Without ``pool`` every reference is fresh (indices 0, 1, ... per kind: an evaluation split);
    with ``pool`` / ``count_pool`` indices are drawn at random below those bounds (reusing a
    precomputed training pool; ``pool_attributes`` may pass the pool's attributes in).
    """

    def __init__(self, seed: int, rng: np.random.Generator, pool: int | None = None, count_pool: int | None = None,
                 pool_attributes: dict[SceneRef, dict] | None = None):
        self.seed, self.rng, self.pool, self.count_pool = seed, rng, pool, count_pool
        self._next = {"single": 0, "count": 0}
        self._attributes: dict[SceneRef, dict] = dict(pool_attributes or {})
        self._by_shape: dict[str, list[SceneRef]] | None = None

    def attributes(self, ref: SceneRef) -> dict:
        if ref not in self._attributes:
            self._attributes[ref] = scene_attributes(ref)
        return self._attributes[ref]

    def take(self, kind: str = "single") -> SceneRef:
        limit = self.pool if kind == "single" else self.count_pool
        if limit is not None:
            return SceneRef(self.seed, int(self.rng.integers(limit)), kind)
        index = self._next[kind]
        self._next[kind] += 1
        return SceneRef(self.seed, index, kind)

    def take_shape(self, shape: str, tries: int = 500) -> SceneRef:
        """A single-object scene whose shape is ``shape`` (fresh, or drawn from the pool)."""
        if self.pool is not None:
            if self._by_shape is None:
                self._by_shape = {s: [] for s in w.SHAPES}
                for index in range(self.pool):
                    ref = SceneRef(self.seed, index)
                    self._by_shape[self.attributes(ref)["shape"]].append(ref)
            candidates = self._by_shape[shape]
            return candidates[int(self.rng.integers(len(candidates)))]
        for _ in range(tries):
            ref = self.take()
            if self.attributes(ref)["shape"] == shape:
                return ref
        raise RuntimeError(f"no {shape} found in {tries} scenes")


def _qa(task: str, source: SceneSource, rng) -> Example:
    ref = source.take()
    value = source.attributes(ref)[task]
    turns = [Turn("user", [ref, _pick(rng, QUESTIONS[task])]), Turn("assistant", [value], latent=value)]
    return Example(task, turns, value, {"refs": [ref]})


def name_answer(attributes: dict) -> str:
    """``"a small red striped star"``: size, colour, texture, shape."""
    return "a " + " ".join(attributes[a] for a in NAME_ATTRIBUTES)


def _name(source: SceneSource, rng) -> Example:
    ref = source.take()
    attrs = source.attributes(ref)
    answer = name_answer(attrs)
    turns = [Turn("user", [ref, _pick(rng, NAME_QUESTIONS)]), Turn("assistant", [answer])]
    return Example("name", turns, answer, {"refs": [ref], "attributes": {a: attrs[a] for a in NAME_ATTRIBUTES}})


def _yesno(source: SceneSource, rng, described: bool = False) -> Example:
    ref = source.take()
    attrs = source.attributes(ref)
    attribute = _pick(rng, ATTRIBUTE_TASKS)
    if described:
        return _described(_yesno_for(ref, attrs, attribute, rng), attrs)
    return _yesno_for(ref, attrs, attribute, rng)


def _yesno_for(ref: SceneRef, attrs: dict, attribute: str, rng) -> Example:
    truth = rng.random() < 0.5
    value = attrs[attribute] if truth else _pick(rng, [v for v in w.ATTRIBUTES[attribute] if v != attrs[attribute]])
    answer = "yes" if truth else "no"
    turns = [Turn("user", [ref, _yesno_question(attribute, value)]), Turn("assistant", [answer], latent=attrs[attribute])]
    return Example("yesno", turns, answer, {"refs": [ref], "attribute": attribute, "value": value})


def _mcq(source: SceneSource, rng, described: bool = False) -> Example:
    ref = source.take()
    attrs = source.attributes(ref)
    attribute = _pick(rng, ATTRIBUTE_TASKS)
    if described:
        return _described(_mcq_for(ref, attrs, attribute, rng), attrs)
    return _mcq_for(ref, attrs, attribute, rng)


def _mcq_for(ref: SceneRef, attrs: dict, attribute: str, rng) -> Example:
    values = list(w.ATTRIBUTES[attribute])
    k = min(4, len(values))
    wrong = [v for v in values if v != attrs[attribute]]
    options = [attrs[attribute], *rng.choice(wrong, k - 1, replace=False).tolist()]
    rng.shuffle(options)
    letter = LETTERS[options.index(attrs[attribute])]
    listing = " ".join(f"{LETTERS[i]} ) {v}" for i, v in enumerate(options))
    text = f"{_pick(rng, QUESTIONS[attribute])} options : {listing} . {MCQ_SUFFIX}"
    letters = {v: LETTERS[i] for i, v in enumerate(options)}
    turns = [Turn("user", [ref, text], word_latents=letters), Turn("assistant", [letter], latent=attrs[attribute])]
    return Example("mcq", turns, letter, {"refs": [ref], "attribute": attribute, "options": options})


def _described(example: Example, attributes: dict) -> Example:
    """``example`` with its image replaced by the scene's description (training only: picking the
    asked attribute out of the description and comparing it with the question's word is the
    circuit that yes/no and lettered choice need, learnable in text before it has to go through
    perception; docs/chat.md)."""
    statement = describe(attributes)
    turns = [replace(t, parts=[statement if isinstance(p, SceneRef) else p for p in t.parts]) for t in example.turns]
    return Example(f"text_{example.task}", turns, example.answer, {**example.meta, "refs": []})


def _echo(rng, labels: list[str]) -> Example:
    """``"red dax blue wug . repeat the words ."`` -> ``"red dax blue wug"`` (training only). Each
    repeated label follows its key, so it is predicted by matching the token just written to the
    prompt and copying what followed it there: the adjacent form of induction, which a small model
    learns in a few hundred steps and which then carries over to the gapped forms (key and answer
    separated by template tokens) that it does not learn alone (docs/chat.md)."""
    attribute = _pick(rng, ("color", "shape", "texture", "background"))
    values = list(w.ATTRIBUTES[attribute])
    ways = int(rng.integers(2, min(5, len(values)) + 1))
    keys = rng.choice(values, ways, replace=False).tolist()
    names = rng.choice(labels, ways, replace=False).tolist()
    pairs = " ".join(f"{k} {n}" for k, n in zip(keys, names, strict=True))
    order = rng.permutation(ways)
    recalled = " ".join(f"{keys[i]} {names[i]}" for i in order)
    turns = [Turn("user", [f"{pairs} . {ECHO_REQUEST}"]), Turn("assistant", [recalled])]
    return Example("echo", turns, recalled, {"labels": names})


def _count(source: SceneSource, rng) -> Example:
    ref = source.take("count")
    answer = COUNT_WORDS[source.attributes(ref)["n_objects"] - 1]
    return Example("count", [Turn("user", [ref, _pick(rng, COUNT_QUESTIONS)]), Turn("assistant", [answer])], answer, {"refs": [ref]})


def _icl(source: SceneSource, rng, labels: list[str], ways: int | None = None, queries: int = 1) -> Example:
    """k-way one-shot labelling: the context's shapes differ, labels are nonce words; the query
    shares its shape (not its other attributes) with one context image. ``queries`` > 1 adds
    follow-up query turns (each answer supervised in training; the evaluation scores the first)."""
    ways = ways or int(_pick(rng, (2, 3, 4, 4, 4, 5)))
    shapes = rng.choice(list(w.SHAPES), ways, replace=False).tolist()
    names = rng.choice(labels, ways, replace=False).tolist()
    parts: list[Part] = []
    for shape, name in zip(shapes, names, strict=True):
        parts += [source.take_shape(shape), name]
    turns: list[Turn] = []
    answers = []
    for q in range(queries):
        target = int(rng.integers(ways))
        if q == 0:
            user_parts = [*parts, source.take_shape(shapes[target]), ICL_QUERY]
        elif rng.random() < 0.25:  # keyed by the shape's name: the label must carry its image's shape
            user_parts = [ICL_BY_NAME.format(shapes[target])]
        else:
            user_parts = [source.take_shape(shapes[target]), _pick(rng, ICL_MORE)]
        turns += [Turn("user", user_parts), Turn("assistant", [names[target]])]
        answers.append(names[target])
    if queries == 1:
        return Example("icl", turns, answers[0], {"labels": names, "shapes": shapes})
    return Example("icl", turns, answers[-1], {"labels": names, "shapes": shapes})


def _text_icl(rng, labels: list[str], queries: int = 3) -> Example:
    """Text-only induction: ``"red dax blue wug ... what is blue ?" -> "wug"`` (keys are the
    values of one attribute); a curriculum step towards image ICL."""
    attribute = _pick(rng, ("color", "shape", "texture", "background"))
    values = list(w.ATTRIBUTES[attribute])
    ways = int(rng.integers(2, min(5, len(values)) + 1))
    keys = rng.choice(values, ways, replace=False).tolist()
    names = rng.choice(labels, ways, replace=False).tolist()
    context = " ".join(f"{k} {n}" for k, n in zip(keys, names, strict=True))
    turns = []
    for q in range(queries):
        target = int(rng.integers(ways))
        text = f"{context} . what is {keys[target]} ?" if q == 0 else f"and {keys[target]} ?"
        turns += [Turn("user", [text]), Turn("assistant", [names[target]])]
    return Example("text_icl", turns, turns[-1].parts[0], {"labels": names})


def _multiturn(source: SceneSource, rng) -> Example:
    """Two turns; the second is a follow-up ("and its shape ?", or a second image: "is this the
    same shape ?") that cannot be answered without the first."""
    ref = source.take()
    attrs = source.attributes(ref)
    if rng.random() < 0.5:
        first, second = rng.choice(list(ATTRIBUTE_TASKS), 2, replace=False).tolist()
        turns = [Turn("user", [ref, _pick(rng, QUESTIONS[first])]), Turn("assistant", [attrs[first]], latent=attrs[first]),
                 Turn("user", [_pick(rng, FOLLOW_UPS[second])]), Turn("assistant", [attrs[second]], latent=attrs[second])]
        return Example("multiturn", turns, attrs[second], {"refs": [ref], "kind": "follow-up", "attribute": second})
    attribute = _pick(rng, ("shape", "color"))
    same = rng.random() < 0.5
    for _ in range(200):
        other = source.take()
        if (source.attributes(other)[attribute] == attrs[attribute]) == same:
            break
    answer = "yes" if same else "no"
    turns = [Turn("user", [ref, _pick(rng, QUESTIONS[attribute])]), Turn("assistant", [attrs[attribute]], latent=attrs[attribute]),
             Turn("user", [other, _pick(rng, SAME_QUESTIONS[attribute])]),
             Turn("assistant", [answer], latent=source.attributes(other)[attribute])]
    return Example("multiturn", turns, answer, {"refs": [ref, other], "kind": "same", "attribute": attribute})


def make_example(
    task: str, source: SceneSource, rng: np.random.Generator, labels: list[str], *, icl_queries: int = 1, ways: int | None = None
) -> Example:
    """One ground-truth conversation of ``task`` (see ``TASKS``)."""
    if task in ATTRIBUTE_TASKS:
        return _qa(task, source, rng)
    if task == "name":
        return _name(source, rng)
    if task == "yesno":
        return _yesno(source, rng)
    if task == "mcq":
        return _mcq(source, rng)
    if task == "count":
        return _count(source, rng)
    if task == "icl":
        return _icl(source, rng, labels, ways=ways, queries=icl_queries)
    if task == "text_icl":
        return _text_icl(rng, labels, queries=icl_queries)
    if task == "multiturn":
        return _multiturn(source, rng)
    if task == "echo":
        return _echo(rng, labels)
    if task in ("text_yesno", "text_mcq"):
        return (_yesno if task == "text_yesno" else _mcq)(source, rng, described=True)
    raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")


def turn_images(turns: list[Turn]) -> list[SceneRef]:
    return [p for t in turns for p in t.parts if isinstance(p, SceneRef)]
