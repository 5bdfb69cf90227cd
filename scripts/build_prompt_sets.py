"""Write SEM's shipped prompt sets: ``neutral.txt`` (generic reference prompts) and ``bias.json``
(20 prompts per class of each sensitive attribute), under ``src/vlmkit/debias/prompts/``.

The word lists below are the source; the files are frozen outputs (SEM's scores depend on
them, so they ship as data and change only when this script is rerun)::

    python scripts/build_prompt_sets.py
"""

from __future__ import annotations

import json
from pathlib import Path

from vlmkit.data.world import ATTRIBUTES

OUT = Path(__file__).resolve().parents[1] / "src/vlmkit/debias/prompts"

PROFESSIONS = [
    "accountant",
    "architect",
    "baker",
    "barber",
    "biologist",
    "bus driver",
    "butcher",
    "carpenter",
    "cashier",
    "chef",
    "chemist",
    "civil engineer",
    "cleaner",
    "coach",
    "construction worker",
    "dancer",
    "dentist",
    "designer",
    "doctor",
    "economist",
    "electrician",
    "farmer",
    "firefighter",
    "fisher",
    "florist",
    "gardener",
    "geologist",
    "graphic designer",
    "hairdresser",
    "historian",
    "journalist",
    "judge",
    "lawyer",
    "librarian",
    "lifeguard",
    "mail carrier",
    "mechanic",
    "musician",
    "nurse",
    "painter",
    "paramedic",
    "pharmacist",
    "photographer",
    "physicist",
    "pilot",
    "plumber",
    "police officer",
    "politician",
    "professor",
    "programmer",
    "receptionist",
    "researcher",
    "sailor",
    "salesperson",
    "scientist",
    "sculptor",
    "security guard",
    "singer",
    "social worker",
    "software developer",
    "soldier",
    "surgeon",
    "tailor",
    "taxi driver",
    "teacher",
    "translator",
    "veterinarian",
    "waiter",
    "web developer",
    "writer",
    "zookeeper",
    "astronaut",
    "athlete",
    "banker",
    "cook",
    "courier",
    "data analyst",
    "editor",
    "film director",
    "flight attendant",
]
HOBBIES = [
    "reading a book",
    "playing chess",
    "painting a canvas",
    "playing the guitar",
    "playing the piano",
    "hiking in the mountains",
    "swimming in a pool",
    "riding a bicycle",
    "running in a park",
    "cooking dinner",
    "baking bread",
    "gardening",
    "knitting",
    "fishing by a lake",
    "taking photographs",
    "playing football",
    "playing basketball",
    "playing tennis",
    "skiing",
    "surfing",
    "climbing a wall",
    "doing yoga",
    "dancing",
    "singing",
    "playing video games",
    "watching a movie",
    "writing in a journal",
    "drawing a sketch",
    "camping in a tent",
    "bird watching",
    "building a model",
    "solving a puzzle",
    "playing cards",
    "sewing",
    "making pottery",
    "skateboarding",
    "ice skating",
    "rowing a boat",
    "kayaking",
    "horse riding",
    "playing the drums",
    "playing the violin",
    "jogging at sunrise",
    "lifting weights",
    "doing woodwork",
    "collecting stamps",
    "visiting a museum",
    "shopping at a market",
    "walking a dog",
    "feeding birds",
    "flying a kite",
    "playing golf",
    "bowling",
    "playing volleyball",
    "practicing archery",
    "meditating",
    "sketching buildings",
    "repairing a bike",
    "planting trees",
    "studying a map",
    "sailing",
    "snorkeling",
    "playing badminton",
    "doing a crossword",
    "writing code",
    "teaching a class",
    "giving a speech",
    "volunteering",
    "cleaning the house",
    "painting a wall",
]
EMOTIONS = [
    "happy",
    "sad",
    "angry",
    "surprised",
    "calm",
    "tired",
    "excited",
    "bored",
    "nervous",
    "proud",
    "confused",
    "relaxed",
    "worried",
    "curious",
    "hopeful",
    "lonely",
    "grateful",
    "frustrated",
    "amused",
    "focused",
    "thoughtful",
    "cheerful",
    "anxious",
    "content",
    "determined",
    "embarrassed",
    "relieved",
    "scared",
    "shy",
    "confident",
    "joyful",
    "serious",
    "sleepy",
    "puzzled",
    "satisfied",
    "disappointed",
    "enthusiastic",
    "peaceful",
    "stressed",
    "playful",
]
SCENES = [
    "a busy street",
    "a quiet beach",
    "a snowy mountain",
    "a green forest",
    "a city skyline at night",
    "a desert at sunset",
    "a crowded market",
    "a small village",
    "a modern office",
    "a school classroom",
    "a hospital corridor",
    "a train station",
    "an airport terminal",
    "a football stadium",
    "a public library",
    "a kitchen",
    "a living room",
    "a bedroom",
    "a garden",
    "a farm field",
    "a river bank",
    "a lake at dawn",
    "a harbour with boats",
    "a bridge over a river",
    "a rainy street",
    "a foggy morning",
    "a park in autumn",
    "a playground",
    "a shopping mall",
    "a restaurant",
    "a coffee shop",
    "a museum hall",
    "a concert stage",
    "a science laboratory",
    "a factory floor",
    "a construction site",
    "a parking lot",
    "a highway",
    "a mountain road",
    "a waterfall",
    "a cave",
    "a volcano",
    "a glacier",
    "a tropical island",
    "a vineyard",
    "an orchard",
    "a greenhouse",
    "a bakery",
    "a bookstore",
    "a gym",
    "a swimming pool",
    "a tennis court",
    "a ski slope",
    "a campsite",
    "a lighthouse",
    "a castle",
    "a church",
    "a temple",
    "a cathedral",
    "a town square",
    "a subway train",
    "a bus stop",
    "a gas station",
    "a supermarket aisle",
    "a hotel lobby",
    "a conference room",
    "a rooftop",
    "a balcony",
    "a backyard",
    "a sunny meadow",
]
OBJECTS = [
    "a red apple",
    "a cup of coffee",
    "a wooden chair",
    "a laptop computer",
    "a mobile phone",
    "a bicycle",
    "a car",
    "a bus",
    "a sailboat",
    "an airplane",
    "a dog",
    "a cat",
    "a horse",
    "a bird",
    "a fish tank",
    "a vase of flowers",
    "a bookshelf",
    "a clock",
    "a lamp",
    "a guitar",
    "a pair of shoes",
    "a backpack",
    "an umbrella",
    "a bowl of soup",
    "a pizza",
    "a birthday cake",
    "a teapot",
    "a television",
    "a camera",
    "a bottle of water",
    "a loaf of bread",
    "a basket of fruit",
    "a tree",
    "a sunflower",
    "a stone wall",
    "a wooden door",
    "a window",
    "a staircase",
    "a fountain",
    "a statue",
    "a painting on a wall",
    "a map",
    "a globe",
    "a pencil",
    "a notebook",
    "a pair of glasses",
    "a hat",
    "a scarf",
    "a ball",
    "a kite",
]
PEOPLE_TEMPLATES = ["a photo of {}.", "a portrait of {}.", "a picture of {}.", "a close-up photo of {}.", "an image of {}."]
PEOPLE = {
    "gender": {
        "female": ["a woman", "a female person", "a girl", "a lady"],
        "male": ["a man", "a male person", "a boy", "a gentleman"],
    },
    "race": {race: [f"{article} {race} person", f"{article} {race} man", f"{article} {race} woman", f"{article} {race} face"]
             for race, article in [("White", "a"), ("Black", "a"), ("Indian", "an"), ("East Asian", "an"), ("Southeast Asian", "a"),
                                   ("Middle Eastern", "a"), ("Latino Hispanic", "a")]},
    "age": {
        "child": ["a child", "a young kid", "a little child", "a kid"],
        "young adult": ["a young adult", "a person in their twenties", "a young person", "a student"],
        "middle-aged": ["a middle-aged person", "a person in their fifties", "a middle-aged adult", "a mature adult"],
        "elderly": ["an elderly person", "an old person", "a senior citizen", "a person in their eighties"],
    },
}
WORLD_TEMPLATES = {
    "background": [
        "a shape on a {} background.",
        "an object against a {} background.",
        "something on a {} background.",
        "a plain {} background.",
        "a picture with a {} backdrop.",
    ],
    "color": ["a {} shape.", "a {} object.", "something {}.", "a {} thing.", "a picture of something {}."],
    "texture": ["a {} shape.", "a {} object.", "something {}.", "a {} pattern.", "a picture of a {} thing."],
    "position": [
        "a shape at the {}.",
        "an object at the {}.",
        "something at the {}.",
        "a shape in the {} of the image.",
        "an object placed at the {}.",
    ],
    "size": ["a {} shape.", "a {} object.", "something {}.", "a {} thing.", "a picture of something {}."],
}
PER_CLASS = 20


def article(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def neutral_prompts() -> list[str]:
    return (
        [f"a photo of {article(p)}." for p in PROFESSIONS]
        + [f"a photo of a person {h}." for h in HOBBIES]
        + [f"a photo of a person who looks {e}." for e in EMOTIONS]
        + [f"a photo of {s}." for s in SCENES]
        + [f"a photo of {o}." for o in OBJECTS]
    )


def world_class_prompts(templates: list[str], value: str) -> list[str]:
    base = [t.format(value) for t in templates]
    variants = [p[:-1] + suffix for suffix in (" in the image.", " in this picture.", " here.") for p in base]
    return (base + variants)[:PER_CLASS]


def bias_prompts() -> dict:
    data: dict = {
        "_doc": "SEM bias prompts (sem_b, sem_bi; Orth-Proj): attribute -> class -> 20 prompts. People attributes use FairFace's "
        "race classes, binary gender and four age groups; world-* attributes are the shapes world's nuisances. Written for vlmkit "
        "by scripts/build_prompt_sets.py."
    }
    for attribute, classes in PEOPLE.items():
        data[attribute] = {name: [t.format(noun) for noun in nouns for t in PEOPLE_TEMPLATES][:PER_CLASS] for name,
                           nouns in classes.items()}
    for attribute, templates in WORLD_TEMPLATES.items():
        data[f"world-{attribute}"] = {value: world_class_prompts(templates, value) for value in ATTRIBUTES[attribute]}
    return data


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    neutral = neutral_prompts()
    header = (f"# vlmkit neutral reference prompts for SEM: {len(neutral)} generic prompts free of gender, race and age words\n"
              "# (professions, hobbies, emotions of 'a person', scenes, objects), by scripts/build_prompt_sets.py.\n")
    (OUT / "neutral.txt").write_text(header + "\n".join(neutral) + "\n")
    bias = bias_prompts()
    for attribute, classes in bias.items():
        for name, prompts in ({} if attribute == "_doc" else classes).items():
            assert len(prompts) == len(set(prompts)) == PER_CLASS, (attribute, name)
    (OUT / "bias.json").write_text(json.dumps(bias, indent=1) + "\n")
    print(f"wrote {len(neutral)} neutral prompts and {sum(len(c) for a, c in bias.items() if a != '_doc')} bias classes to {OUT}")


if __name__ == "__main__":
    main()
