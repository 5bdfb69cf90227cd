"""Ship a ``vlmkit world train-chat`` run as the packaged ``embedded-chat``, with its measured card.

    python scripts/ship_embedded_chat.py RUN_DIR EVAL_DIR "NOTES"

RUN_DIR is the ``--out`` of ``vlmkit world train-chat``; EVAL_DIR the ``--out`` of
``vlmkit world eval-chat --model RUN_DIR/model --n 500 --seed 1000``. The latest checkpoint is
exported (and verified) into ``src/vlmkit/models/weights/embedded-chat``; the card's table comes
from EVAL_DIR's ``result.json``, NOTES is its closing paragraph.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vlmkit.models.embedded import shipped_dir
from vlmkit.models.embedded_chat_train import export_checkpoint


def main(run: str, eval_dir: str, notes: str) -> None:
    result = json.loads((Path(eval_dir) / "result.json").read_text())
    metrics = {
        "command": "`vlmkit world eval-chat --model embedded-chat --n 500 --seed 1000 --out DIR` (world seed never used in"
                   " training; ICL labels from the held-out nonce pool):",
        "tasks": {task: row["accuracy"] for task, row in result["tasks"].items()},
        "notes": notes,
    }
    print(export_checkpoint(run, shipped_dir("embedded-chat"), metrics))


if __name__ == "__main__":
    main(*sys.argv[1:])
