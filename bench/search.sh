#!/usr/bin/env bash
# The corpus search benchmark: one command, results in bench/results/search.md.
# Sets up its peers (a venv under bench/ with faiss-cpu and numpy from PyPI), builds snapembed in
# release mode, and runs search.py: a synthetic 100,000-document index, the scan on one thread
# against faiss IndexFlatIP and numpy over the same vectors, a real `snapembed index` build of a
# 300-document slice, /search end to end, and exec → first /search as a whole process.
# Usage: bench/search.sh [--docs N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venv="$here/.venv-search"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -c "import faiss, numpy" 2>/dev/null || "$venv/bin/pip" install --quiet faiss-cpu numpy
(cd "$root" && cargo build --release --quiet -p snapembed)
exec "$venv/bin/python" "$here/search.py" --bin "$root/target/release/snapembed" --out "$here/out/search" "$@"
