#!/usr/bin/env bash
# Make (or reuse) a second venv with transformers 4.57 (and the huggingface_hub < 1 it needs), layered on the
# main venv made by ../shared/py-venv.sh (torch, peft, accelerate, safetensors are read from there through a .pth).
# usage: scripts/py-venv-tf4.sh BASE_VENV DIR   (prints DIR/bin/python on success)
set -euo pipefail
base=${1:?usage: py-venv-tf4.sh BASE_VENV DIR}; dir=${2:?usage: py-venv-tf4.sh BASE_VENV DIR}
if "$dir/bin/python" -c "import torch, peft, transformers; assert transformers.__version__.startswith('4.57')" 2>/dev/null; then echo "$dir/bin/python"; exit 0; fi
read -r -a idx <<<"$(pip config get global.extra-index-url 2>/dev/null || true)"
links=$(pip config get global.find-links 2>/dev/null || true)
[ ${#idx[@]} -gt 0 ] || { echo "py-venv-tf4.sh: pip names no local mirror here" >&2; exit 2; }
args=(--index-url "${idx[0]}"); for u in "${idx[@]:1}"; do args+=(--extra-index-url "$u"); done
[ -n "$links" ] && args+=(--find-links "$links")
rm -rf "$dir"; python3 -m venv "$dir"
site=$("$dir/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
basesite=$("$base/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$basesite" > "$site/zz-moe-tune-base.pth"
"$dir/bin/pip" install -q "${args[@]}" --no-deps 'transformers==4.57.6' requests charset_normalizer urllib3 'tokenizers<=0.23.0,>=0.22.0' >&2
# transformers 4.57 checks huggingface_hub < 1 at import; the mirror carries only huggingface_hub >= 1, which
# serves local directories (all our tests use) the same way. Drop that one import-time check in this venv only.
sed -i 's/^    "huggingface-hub",$/    # "huggingface-hub",  (moe-tune test venv: see scripts\/py-venv-tf4.sh)/' \
  "$site/transformers/dependency_versions_check.py"
echo "$dir/bin/python"
