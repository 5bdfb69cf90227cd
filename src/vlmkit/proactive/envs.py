"""ProactiveBench environments: one Markov decision process per scenario (arXiv 2603.19466, §3).

An environment wraps one episode record in the published ``*_preprocessed.jsonl`` format
(fields ``id``, ``image_template``, ``first_image``, ``num_images``, ``reference_image``,
``prompt``, ``options``, ``categories``, ``answer`` and per-scenario extras). At each turn it
shows one frame and a lettered option list: the proactive suggestions valid in the current state
(plus an abstain option, whose text says "cannot" or "do not") followed by the category options.
:meth:`Environment.step` reads the reply (:mod:`vlmkit.proactive.answers`) and either ends the
episode (correct category: success; anything else: failure) or applies the requested action and
moves to the next frame. Reaching ``max_steps`` turns ends the episode.

The transitions, option sets, hints and step limits are the official release's
(``tdemin16/proactivebench``, ``environment.py``), written anew: ROD and VSOD wrap around,
ChangeIt clamps at the video's ends and removes the option that would leave it, MVP-N's eleven
phrasings are one action, ImageNet-C's three invalid enhancements end the episode as failures,
COCO's crop window grows by one step per move. Images come from an :class:`ImageSource`: a
folder of extracted zips (:class:`FolderSource`) or frames rendered in memory (the shapes-world
scenarios, :mod:`vlmkit.proactive.world`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

from PIL import Image

from vlmkit.errors import UserError
from vlmkit.proactive.answers import judge

#: option keyword -> action (the release's map; a chosen option's action is its first keyword
#: that belongs to the scenario's action space)
ACTION_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("to the left", "left"), ("to the right", "right"), ("rewind the video.", "rewind"), ("wait for the", "forward"),
    ("rotate", "rotate"), ("view", "rotate"), ("angle", "rotate"), ("orientation", "rotate"), ("different", "rotate"),
    ("brightness", "brightness"), ("contrast", "contrast"), ("saturation", "saturate"), ("deblur", "blur"),
    ("denoise", "noise"), ("compression", "jpeg"), ("resolution", "pixelate"), ("artifacts", "artifacts"),
    ("details", "details"), ("quickdraw", "details"), ("drawing", "details"), ("sketch", "details"),
    ("up", "up"), ("down", "down"), ("farther", "zoom"),
)


class ImageSource(Protocol):
    """Where an environment's frames come from: ``open(relative path) -> RGB image``."""

    def open(self, relative: str) -> Image.Image: ...


class FolderSource:
    """Frames under a data directory (the extracted test zips); paths in the records are relative to it."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def open(self, relative: str) -> Image.Image:
        path = self.root / relative
        try:
            with Image.open(path) as handle:
                return handle.convert("RGB")
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read frame {path}: {type(exc).__name__}; extract the scenario's test zip into {self.root}") from exc


def is_abstain(option: str) -> bool:
    """The release's rule: an option saying "cannot" or "do not" is never a valid request."""
    low = option.lower()
    return "cannot" in low or "do not" in low


@dataclass
class Turn:
    """One turn of an episode: what was shown, what was said, and what it did."""

    frame: str
    prompt: str
    options: list[str]
    reply: str
    action_verdict: str  # correct / wrong / mismatch against the valid proactive options
    category_verdict: str  # correct / wrong / mismatch against the categories
    action: str | None  # the requested action (a valid proactive option), else None
    thumb: Image.Image | None = None  # a small copy of the frame, for reports


@dataclass
class Environment:
    """One episode of a scenario. Subclasses set the class attributes and the transition.

    Attributes:
        entry: the episode record (published format).
        source: where frames are read from.
    """

    entry: dict
    source: ImageSource
    turns: list[Turn] = field(default_factory=list)
    done: bool = False
    success: bool = False

    scenario: ClassVar[str] = ""  # short name (ROD, VSOD, MVP-N, IN-C, QD, CIT, COCO, or a world scenario)
    actions: ClassVar[tuple[str, ...]] = ()
    hint: ClassVar[str] = ""
    pre_prompt: ClassVar[str] = ""
    k_proactive: ClassVar[int] = 1  # OEG: how many leading judge items are proactive suggestions

    def __post_init__(self):
        e = self.entry
        self.options: list[str] = list(e["options"])
        self.categories: list[str] = list(e["categories"])
        self.answer: str = e["answer"]
        if self.answer not in self.categories:
            raise UserError(f"episode {e.get('id')}: answer {self.answer!r} is not among its categories; the episode file is corrupt")
        self.image_id = e["first_image"]
        self.last_action: str | None = None
        self.num_turns = 0
        self.max_steps = self.step_limit()
        self.correct_options = [o for i, o in enumerate(self.options) if i in self.correct_option_indices()]

    # -- per-scenario rules (overridden) ---------------------------------------------------

    def step_limit(self) -> int:
        return int(self.entry["num_images"])

    def correct_option_indices(self) -> set[int]:
        return {i for i, o in enumerate(self.options) if not is_abstain(o)}

    def valid_options(self) -> list[str]:
        """The proactive options offered in this state (before the categories)."""
        return list(self.options)

    def correct_sets(self) -> tuple[list[str], list[str]]:
        """(proactive options, categories) that count as right in this state."""
        return list(self.correct_options), [self.answer]

    def frame_path(self) -> str:
        return self.entry["image_template"].format(image=self.image_id)

    def transform(self, image: Image.Image) -> Image.Image:
        return image

    def advance(self, action: str) -> None:
        raise NotImplementedError

    def oeg_answers(self) -> list[str]:
        """The judge's item list: the proactive answers first (``k_proactive`` of them), then the category."""
        raise NotImplementedError

    # -- the MDP ---------------------------------------------------------------------------

    @property
    def question(self) -> str:
        return f"{self.pre_prompt} {self.entry['prompt']}" if self.pre_prompt else self.entry["prompt"]

    def prompt(self, hint: bool = False) -> str:
        return f"{self.question} {self.hint}" if hint and self.hint else self.question

    def shown_options(self) -> list[str]:
        return self.valid_options() + self.categories

    def frame(self) -> Image.Image:
        return self.transform(self.source.open(self.frame_path()))

    def reference_frame(self) -> Image.Image:
        """The informative reference frame (the paper's control: asked directly, categories only)."""
        saved = self.image_id
        self.image_id = self.entry["reference_image"]
        try:
            path = self.frame_path()
        finally:
            self.image_id = saved
        return self.source.open(path)

    def action_of(self, option: str) -> str | None:
        low = option.lower()
        return next((action for key, action in ACTION_KEYWORDS if action in self.actions and key in low), None)

    def read(self, reply: str) -> tuple[str, str, str | None]:
        """``(action verdict, category verdict, requested action or None)`` of a reply in the
        current state, without acting on it (the RL reward reads replies this way)."""
        valid = self.valid_options()
        right_options, right_categories = self.correct_sets()
        action_verdict, chosen = judge(reply, right_options, valid, 0)
        category_verdict, _ = judge(reply, right_categories, self.categories, len(valid))
        requested = category_verdict != "correct" and action_verdict == "correct"
        return action_verdict, category_verdict, (self.action_of(chosen) if requested else None)

    def step(self, reply: str, hint: bool = False) -> Turn:
        """Apply one reply; returns the recorded turn. Raises when the episode is over."""
        if self.done:
            raise RuntimeError("the episode is over")
        action_verdict, category_verdict, action = self.read(reply)
        self.success = category_verdict == "correct"
        turn = Turn(self.frame_path(), self.prompt(hint), self.shown_options(), reply, action_verdict, category_verdict, action)
        self.turns.append(turn)
        self.num_turns += 1
        if action is None or self.num_turns >= self.max_steps:
            self.done = True  # an answer, a refusal, an unreadable reply or the step limit
        else:
            self.last_action = action
            self.advance(action)
        return turn

    @property
    def proactive_moves(self) -> int:
        """The paper's per-episode psr term: turns - 1 (every turn but the last was a valid request)."""
        return max(self.num_turns - 1, 0)

    @property
    def requested(self) -> bool:
        """Whether the episode holds at least one valid request (for ``proactive_rate``)."""
        return any(t.action is not None for t in self.turns)


# -- the seven published scenarios ------------------------------------------------------------


class ROD(Environment):
    """Realistic Occlusion Dataset: move the occluder left/right, circular; frame 1 is fully occluded
    and a category is not accepted before the first move."""

    scenario = "ROD"
    actions = ("left", "right")
    hint = "Hint: moving the occluding object might reveal what is behind it."

    def correct_sets(self):
        return list(self.correct_options), ([self.answer] if self.num_turns > 0 else [])

    def frame_path(self) -> str:
        path = self.entry["image_template"].format(image=self.image_id)
        # the release replaces one corrupt frame by its neighbour in the direction of travel
        if "natural_bluebl_greenr-banana-s6" in path:
            return path.replace("s6", "s5") if self.last_action == "left" else path.replace("s6", "s7")
        return path

    def advance(self, action):
        self.image_id = (self.image_id + (-1 if action == "left" else 1)) % int(self.entry["num_images"])

    def oeg_answers(self):
        return ["Move the blocks", "Move the camera"]


class VSOD(Environment):
    """Video occlusion (OcclusionDataSet-MM20): rewind or wait one frame, circular."""

    scenario = "VSOD"
    actions = ("rewind", "forward")
    hint = "Hint: If there is an occlusion, waiting for it to disappear or rewinding the video might reveal what's behind it."
    pre_prompt = "This is a frame extracted from a video. Answer the following question."
    k_proactive = 3

    def frame_path(self):
        return self.entry["image_template"].format(image=str(self.image_id).zfill(4))

    def advance(self, action):
        self.image_id = (self.image_id + (-1 if action == "rewind" else 1)) % int(self.entry["num_images"])

    def oeg_answers(self):
        return ["Wait for the occlusion to disappear", "Rewind the video", "Move the camera", self.answer.replace(".", "")]


class _LastStepCategoriesOnly(Environment):
    """Scenarios whose last frame admits only a category (no request left to make)."""

    def correct_sets(self):
        if self.num_turns + 1 < int(self.entry["num_images"]):
            return list(self.correct_options), [self.answer]
        return [], [self.answer]


class MVPN(_LastStepCategoriesOnly):
    """Multi-view objects: every rotate / change-viewpoint phrasing is the one ``rotate`` action."""

    scenario = "MVP-N"
    actions = ("rotate",)
    hint = "Hint: rotating the object could provide a more informative view."
    k_proactive = 2

    def frame_path(self):
        informative = int(self.num_turns + 1 == int(self.entry["num_images"]))
        return self.entry["image_template"].format(informative=informative, image=str(self.image_id).zfill(4))

    def advance(self, action):
        self.image_id = self.entry["valid_images"][self.num_turns]

    def reference_frame(self):
        path = self.entry["image_template"].format(informative=1, image=str(self.entry["reference_image"]).zfill(4))
        return self.source.open(path)

    def oeg_answers(self):
        return ["Rotate the object", "Move the camera"]


class ImageNetC(_LastStepCategoriesOnly):
    """Corrupted images: only the enhancement matching the corruption is valid; severity drops by one."""

    scenario = "IN-C"
    actions = ("brightness", "contrast", "saturate", "blur", "noise", "jpeg", "pixelate", "artifacts")
    hint = "Hint: enhancing the image quality could help with classification."

    def correct_option_indices(self):
        return {self.options.index(self.entry["quality_answer"])}

    def frame_path(self):
        return self.entry["image_template"].format(level=self.image_id)

    def advance(self, action):
        self.image_id -= 1

    def oeg_answers(self):
        right, categories = self.correct_sets()
        return [a.replace(".", "") for a in right + categories]


class QuickDraw(_LastStepCategoriesOnly):
    """Coarse sketches: add details shows the next stroke set."""

    scenario = "QD"
    actions = ("details",)
    hint = "Hint: Adding more details to the quickdraw could help with classification."

    def frame_path(self):
        return self.entry["image_template"].format(image=str(self.image_id).zfill(4))

    def advance(self, action):
        self.image_id += 1

    def oeg_answers(self):
        return ["Add more details to the drawing", self.answer.replace(".", "")]


class ChangeIt(Environment):
    """State-change videos: rewind / wait by the record's step size, clamped; the option that would
    leave the video is removed at either end."""

    scenario = "CIT"
    actions = ("rewind", "forward")
    hint = "Hint: If you cannot answer the question, waiting for it to appear or rewinding the video could help with classification."
    pre_prompt = "This is a frame extracted from a video. Answer the following question."
    k_proactive = 2

    def step_limit(self):
        return int(self.entry["max_steps"])

    def _drop_blocked(self, options: list[str]) -> list[str]:
        options = list(options)
        size, n = int(self.entry["step_size"]), int(self.entry["num_images"])
        if self.image_id - size < 0:
            options = [o for o in options if o != "Rewind the video."]
        elif self.image_id + size >= n:
            waits = [o for o in options if "Wait for the" in o]
            if waits:
                options.remove(waits[0])
        return options

    def valid_options(self):
        return self._drop_blocked(self.options)

    def correct_sets(self):
        return self._drop_blocked(self.correct_options), [self.answer]

    def frame_path(self):
        return self.entry["image_template"].format(image=str(self.image_id))

    def advance(self, action):
        size = int(self.entry["step_size"])
        self.image_id += -size if action == "rewind" else size

    def oeg_answers(self):
        right = [o for o in self.correct_sets()[0] if o != "Rewind the video."] + ["Rewind the video."]
        return [a.replace(".", "") for a in right + [self.answer]]


class COCO(Environment):
    """Camera crops of COCO images: move the camera (the crop grows towards ``direction``) or zoom
    out (it grows on every side); a direction's option is removed once it is exhausted."""

    scenario = "COCO"
    hint = "Hint: moving the camera could help with classification."
    k_proactive = 2

    def __post_init__(self):
        e = self.entry
        self.direction: str = e["direction"]
        self.h_step = float(e["horizontal_step"])
        self.v_step = float(e["vertical_step"])
        self.h_moves = self.v_moves = 0
        g = int(e["granularity"])
        if "zoom" in self.direction:
            self.actions = ("zoom",)
            self.hint = "Hint: zooming out could help with classification."
            self.max_h, self.max_v = self.h_step * (g + 1), self.v_step * (g + 1)
        else:
            self.actions = tuple(d for d in ("up", "down", "left", "right") if d in self.direction)
            self.max_h = self.h_step * g if ("left" in self.direction or "right" in self.direction) else 0.0
            self.max_v = self.v_step * g if ("up" in self.direction or "down" in self.direction) else 0.0
        super().__post_init__()

    def step_limit(self):
        g = int(self.entry["granularity"])
        if "zoom" in self.direction:
            return g + 1
        return g if "_" not in self.direction else 2 * g

    def _drop_blocked(self, options):
        options = list(options)
        if self.direction == "zoom":
            if self.h_step == self.max_h:
                options = [o for o in options if o != "Move farther from the object."]
            return options
        if self.h_step >= self.max_h:
            options = [o for o in options if o not in ("Move the camera to the left.", "Move the camera to the right.")]
        if self.v_step >= self.max_v:
            options = [o for o in options if o not in ("Move the camera up.", "Move the camera down.")]
        return options

    def valid_options(self):
        return self._drop_blocked(self.options)

    def correct_sets(self):
        return self._drop_blocked(self.correct_options), [self.answer]

    def frame_path(self):
        return self.entry["image_template"]

    def crop_box(self) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) of the current view; the record's ``width``/``height`` are the
        right/bottom edges for moves and the window's size for zoom (the release's convention)."""
        c, d = copy.deepcopy(self.entry["crop"]), self.direction
        zoom = "zoom" in d
        top = c["top"] - self.v_step if ("up" in d or zoom) else c["top"]
        left = c["left"] - self.h_step if ("left" in d or zoom) else c["left"]
        bottom = c["height"] + self.v_step if ("down" in d or zoom) else c["height"]
        right = c["width"] + self.h_step if ("right" in d or zoom) else c["width"]
        if d == "zoom":
            bottom += c["top"]
            right += c["left"]
        return (left, top, right, bottom)

    def transform(self, image):
        return image.crop(self.crop_box())

    def advance(self, action):
        if action in ("left", "right", "zoom"):
            self.h_moves += 1
            self.h_step = self.h_step / self.h_moves * (self.h_moves + 1)
        if action in ("up", "down", "zoom"):
            self.v_moves += 1
            self.v_step = self.v_step / self.v_moves * (self.v_moves + 1)

    def oeg_answers(self):
        return ["Move the camera", "Move farther from the object", self.answer.replace(".", "")]
