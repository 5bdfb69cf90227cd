"""Prompt templates for zero-shot classification.

A template is a string with one ``{}`` where the class name goes. Named sets ship in
``data/templates/<name>.txt`` (one template per line): ``simple`` (``a photo of a {}.``),
``ensemble`` (eight photo paraphrases) and ``bare`` (the class name alone). A template argument
is a set name, a file path, or a literal template.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from vlmkit.errors import UserError
from vlmkit.runs.readers import read_text


def named_sets() -> list[str]:
    folder = resources.files("vlmkit.data").joinpath("templates")
    return sorted(p.name.removesuffix(".txt") for p in folder.iterdir() if p.name.endswith(".txt"))


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def validate(templates: list[str]) -> list[str]:
    if not templates:
        raise UserError("no prompt templates; pass --templates with a set name, a file, or a template such as 'a photo of a {}.'")
    for template in templates:
        if template.count("{}") != 1:
            raise UserError(f"template {template!r} must contain exactly one {{}} where the class name goes, e.g. 'a photo of a {{}}.'")
    return templates


def resolve_templates(specs: list[str] | None, default: str = "simple") -> list[str]:
    """Turn ``--templates`` values (set names, files, literal templates) into a template list."""
    out: list[str] = []
    for spec in specs or [default]:
        if spec in named_sets():
            out += _lines(resources.files("vlmkit.data").joinpath(f"templates/{spec}.txt").read_text())
        elif "{}" not in spec and Path(spec).expanduser().is_file():
            out += _lines(read_text(spec, "template file", "write one template with {} per line (UTF-8)"))
        elif "{}" not in spec and spec.endswith(".txt"):
            raise UserError(f"template file not found: {spec}; pass an existing file with one template per line")
        else:
            out.append(spec)
    return validate(out)


def resolve_classes(spec: str | None) -> list[str] | None:
    """``--classes``: a file (one class per line) or a comma-separated list; ``None`` passes through."""
    if spec is None:
        return None
    path = Path(spec).expanduser()
    if path.is_file():
        classes = _lines(read_text(path, "class file", "write one class name per line (UTF-8)"))
    elif spec.endswith(".txt"):
        raise UserError(f"class file not found: {spec}; pass an existing file with one class per line, or a comma-separated list")
    else:
        classes = [c.strip() for c in spec.split(",") if c.strip()]
    duplicates = sorted({c for c in classes if classes.count(c) > 1})
    if duplicates:
        raise UserError(f"--classes lists {', '.join(duplicates)} more than once; give each class once")
    return classes
