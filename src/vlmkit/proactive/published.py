"""The published ProactiveBench release, read from a local directory (arXiv 2603.19466, §5).

The Hugging Face dataset ``tdemin16/ProactiveBench`` ships, per scenario, a test zip of frames and
``<dataset>_preprocessed.jsonl``. Extract the zips into one directory next to the jsonl files (the
release's README: ``cd ProactiveBench/test && for a in *.zip; do unzip -o "$a"; done``); frame
paths in the records are relative to that directory.

Episodes are kept as the release keeps them: the ids of the difficulty filter
(``data/kept_ids.json``, copied from the official ``data_utils.FILTER``: 7,557 of 17,909
samples) and, for VSOD, only records with ``strong_occlusions`` true.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from vlmkit.errors import UserError
from vlmkit.proactive import envs

#: short name -> (file stem of the release, environment class)
SCENARIOS: dict[str, tuple[str, type[envs.Environment]]] = {
    "ROD": ("Realistic-Occlusion-Dataset", envs.ROD),
    "VSOD": ("OcclusionDataSet-MM20", envs.VSOD),
    "MVP-N": ("MVP-N", envs.MVPN),
    "IN-C": ("ImageNet-C", envs.ImageNetC),
    "QD": ("QuickDraw", envs.QuickDraw),
    "CIT": ("ChangeIt", envs.ChangeIt),
    "COCO": ("coco2014", envs.COCO),
}

REQUIRED = ("id", "image_template", "first_image", "num_images", "prompt", "options", "categories", "answer")
EXTRA = {"VSOD": ("strong_occlusions",), "MVP-N": ("valid_images",), "IN-C": ("quality_answer",), "CIT": ("step_size", "max_steps"),
         "COCO": ("direction", "granularity", "horizontal_step", "vertical_step", "crop")}


@lru_cache(maxsize=1)
def kept_ids() -> dict[str, frozenset[int]]:
    """Per release file stem, the ids the difficulty filter keeps."""
    text = resources.files("vlmkit.proactive").joinpath("data/kept_ids.json").read_text()
    return {name: frozenset(ids) for name, ids in json.loads(text)["kept_ids"].items()}


def resolve(names: str, available: list[str]) -> list[str]:
    """``"all"`` or a comma list of scenario names (case-insensitive) -> canonical names."""
    if names.strip().lower() == "all":
        return list(available)
    lookup = {name.lower(): name for name in available}
    out = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name.lower() not in lookup:
            raise UserError(f"unknown scenario {name!r}; use all or a comma list of {', '.join(available)}")
        out.append(lookup[name.lower()])
    if not out:
        raise UserError(f"no scenario named; use all or a comma list of {', '.join(available)}")
    return out


def load_records(data_dir: str | Path, scenario: str, *, filtered: bool = True) -> list[dict]:
    """The episode records of ``scenario`` from ``data_dir/<stem>_preprocessed.jsonl``, in file order.

    Raises:
        UserError: the file is missing, a line is not JSON, or a record lacks a field.
    """
    from vlmkit.runs.readers import read_jsonl

    stem, _ = SCENARIOS[scenario]
    path = Path(data_dir) / f"{stem}_preprocessed.jsonl"
    fix = f"download ProactiveBench's test split and pass its directory with --data (its {stem}_preprocessed.jsonl)"
    keep = kept_ids().get(stem)
    records = []
    for number, record in enumerate(read_jsonl(path, f"ProactiveBench {scenario} episode file", fix, schema=dict), 1):
        missing = [k for k in (*REQUIRED, *EXTRA.get(scenario, ())) if k not in record]
        if missing:
            raise UserError(f"{path} record {number} lacks {', '.join(missing)}; this is not a ProactiveBench {scenario} episode file")
        if record.get("strong_occlusions") is False:
            continue
        if filtered and keep is not None and record["id"] not in keep:
            continue
        records.append(record)
    return records


def environments(data_dir: str | Path, scenario: str, *, filtered: bool = True) -> list[envs.Environment]:
    """One fresh environment per kept episode of ``scenario``."""
    source = envs.FolderSource(data_dir)
    cls = SCENARIOS[scenario][1]
    return [cls(record, source) for record in load_records(data_dir, scenario, filtered=filtered)]
