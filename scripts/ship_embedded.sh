#!/usr/bin/env bash
# Copy trained checkpoints into the package, measure them, and write their model cards.
# Run after: vlmkit world train-model --out runs/train-embedded
#            vlmkit world train-model --biased --out runs/train-embedded-biased
set -euo pipefail
cd "$(dirname "$0")/.."
for name in embedded embedded-biased; do
  dest=src/vlmkit/models/weights/$name
  mkdir -p "$dest"
  cp runs/train-$name/model/{config.json,model.safetensors,preprocessor_config.json} "$dest/"
done
.venv/bin/vlmkit world eval-model --model embedded --out runs/eval-embedded
.venv/bin/vlmkit world eval-model --model embedded-biased --n 3000 --out runs/eval-embedded-biased
.venv/bin/python scripts/write_model_card.py embedded runs/train-embedded runs/eval-embedded
.venv/bin/python scripts/write_model_card.py embedded-biased runs/train-embedded-biased runs/eval-embedded-biased
