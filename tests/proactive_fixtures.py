"""Published-format ProactiveBench fixtures (tiny frames) and scripted chat models for the tests."""

from __future__ import annotations

import json
import re
from pathlib import Path

from PIL import Image

from vlmkit.proactive.published import SCENARIOS, kept_ids

CATS = ["Apple.", "Banana.", "Cup.", "Dog."]


def _frame(root: Path, relative: str, shade: int, size=(32, 32)) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (shade, shade, shade)).save(path)


def _ids(scenario: str, n: int) -> list[int]:
    return sorted(kept_ids()[SCENARIOS[scenario][0]])[:n]


def write_release(root: Path) -> Path:
    """Two kept episodes per scenario (plus one filtered-out id) in the release's layout."""
    recs: dict[str, list[dict]] = {}
    base = {"prompt": "What object is this?", "categories": CATS, "answer": "Banana.", "reference_image": 0}
    rod = []
    for i in _ids("ROD", 2):
        t = f"ROD/{i}/{{image}}.png"
        for k in range(14):
            _frame(root, t.format(image=k), k)
        rod.append({**base, "id": i, "image_template": t, "first_image": 0, "num_images": 14,
                    "options": ["Move the object to the left.", "Move the object to the right.", "I cannot answer."]})
    recs["ROD"] = rod
    vsod = []
    for j, i in enumerate(_ids("VSOD", 2)):
        t = f"VSOD/{i}/{{image}}.jpg"
        for k in range(6):
            _frame(root, t.format(image=str(k).zfill(4)), k)
        vsod.append({**base, "id": i, "image_template": t, "first_image": 0, "num_images": 6, "strong_occlusions": j == 0,
                     "options": ["Wait for the occlusion to disappear.", "Rewind the video.", "I do not know."]})
    recs["VSOD"] = vsod
    mvp = []
    for i in _ids("MVP-N", 2):
        t = f"MVP/{i}/{{informative}}_{{image}}.png"
        for k in range(4):
            for inf in (0, 1):
                _frame(root, t.format(informative=inf, image=str(k).zfill(4)), k)
        mvp.append({**base, "id": i, "image_template": t, "first_image": 0, "num_images": 4, "valid_images": [0, 1, 2, 3],
                    "options": ["Rotate the object.", "Show a different angle.", "I cannot answer."]})
    recs["MVP-N"] = mvp
    inc = []
    for i in _ids("IN-C", 2):
        t = f"INC/{i}/{{level}}.png"
        for k in range(1, 6):
            _frame(root, t.format(level=k), k)
        inc.append(
            {
                **base,
                "id": i,
                "image_template": t,
                "first_image": 5,
                "num_images": 5,
                "quality_answer": "Deblur the image.",
                "options": [
                    "Increase the brightness.",
                    "Deblur the image.",
                    "Denoise the image.",
                    "Increase the contrast.",
                    "I cannot answer.",
                ],
            }
        )
    recs["IN-C"] = inc
    qd = []
    for i in _ids("QD", 2):
        t = f"QD/{i}/{{image}}.png"
        for k in range(3):
            _frame(root, t.format(image=str(k).zfill(4)), k)
        qd.append({**base, "id": i, "image_template": t, "first_image": 0, "num_images": 3,
                   "options": ["Add more details to the drawing.", "I cannot answer."]})
    recs["QD"] = qd
    cit = []
    for i in _ids("CIT", 2):
        t = f"CIT/{i}/{{image}}.jpg"
        for k in range(0, 10):
            _frame(root, t.format(image=k), k)
        cit.append({**base, "id": i, "image_template": t, "first_image": 0, "num_images": 10, "step_size": 3, "max_steps": 5,
                    "options": ["Wait for the object to appear.", "Rewind the video.", "I cannot answer."]})
    recs["CIT"] = cit
    coco = []
    for j, i in enumerate(_ids("COCO", 2)):
        t = f"COCO/{i}.jpg"
        _frame(root, t, 100, size=(200, 200))
        if j == 0:
            coco.append({**base, "id": i, "image_template": t, "first_image": 0, "num_images": 1, "direction": "right", "granularity": 3,
                         "horizontal_step": 10, "vertical_step": 0, "crop": {"left": 20, "top": 30, "width": 60, "height": 90},
                         "options": ["Move the camera to the right.", "I cannot answer."]})
        else:
            coco.append({**base, "id": i, "image_template": t, "first_image": 0, "num_images": 1, "direction": "zoom", "granularity": 2,
                         "horizontal_step": 5, "vertical_step": 4, "crop": {"left": 50, "top": 60, "width": 40, "height": 30},
                         "options": ["Move farther from the object.", "I cannot answer."]})
    recs["COCO"] = coco
    for scenario, rows in recs.items():
        dropped = {**rows[0], "id": -1}  # not in the kept-id list: filtered out
        lines = [json.dumps(r) for r in [*rows, dropped]]
        (root / f"{SCENARIOS[scenario][0]}_preprocessed.jsonl").write_text("\n".join(lines) + "\n")
    return root


def options_of(text: str) -> list[str]:
    """The lettered options listed in an MCQA prompt."""
    return re.findall(r"^[A-Z]\. (.*)$", text, flags=re.M)


class ScriptedChat:
    """A ChatModel whose reply is ``policy(prompt text) -> str`` (no weights)."""

    name = "scripted"
    capabilities = frozenset({"images", "multi_image"})
    fingerprint = "scripted"

    def __init__(self, policy):
        self.policy = policy
        self.calls = 0

    def generate(self, conversations, *, max_new_tokens=64, temperature=0.0, seed=0):
        self.calls += 1
        return [self.policy(conversation[-1].text) for conversation in conversations]

    def score(self, conversation, options):
        raise NotImplementedError


def first_request(text: str) -> str:
    """Always pick the first option that is not an abstention (a request when one is offered)."""
    return next(o for o in options_of(text) if "cannot" not in o.lower() and "do not" not in o.lower())
