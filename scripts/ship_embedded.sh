#!/usr/bin/env bash
# Copy trained checkpoints into the package, measure them, and write their model cards.
#   scripts/ship_embedded.sh [NAME ...]     (default: all three twins)
# Run after: vlmkit world train-model --out runs/train-embedded
#            vlmkit world train-model --biased --out runs/train-embedded-biased
#            vlmkit world train-model --text-biased --threads 1 --out runs/train-embedded-textbiased
# embedded-textbiased is stored in float16 (its vision tower is embedded's, frozen; the text
# adapter is the only trained part), and gets its SAE from scripts/build_world_sae.py.
set -euo pipefail
cd "$(dirname "$0")/.."
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(embedded embedded-biased embedded-textbiased)
for name in "${names[@]}"; do
  dest=src/vlmkit/models/weights/$name
  mkdir -p "$dest"
  cp runs/train-$name/model/{config.json,preprocessor_config.json} "$dest/"
  if [ "$name" = embedded-textbiased ]; then
    .venv/bin/python -c "import sys, torch; from safetensors.torch import load_file, save_file; \
save_file({k: v.to(torch.float16) for k, v in load_file(sys.argv[1]).items()}, sys.argv[2])" \
      runs/train-$name/model/model.safetensors "$dest/model.safetensors"
  else
    cp runs/train-$name/model/model.safetensors "$dest/"
  fi
  n=1000; [ "$name" != embedded ] && n=3000
  .venv/bin/vlmkit world eval-model --model "$name" --n $n --out runs/eval-$name
  .venv/bin/python scripts/write_model_card.py "$name" runs/train-$name runs/eval-$name
done
for name in "${names[@]}"; do
  [ "$name" = embedded-textbiased ] && .venv/bin/python scripts/build_world_sae.py --models embedded-textbiased --threads 1
done
true
