#!/usr/bin/env bash
# Creates .venv-drift-baselines with Alibi Detect and Evidently (pinned in
# requirements/drift-baselines.txt); they conflict with the TFX stack, so the drift benchmark
# runs them in a subprocess of this interpreter. A second call only re-syncs when the lock changed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-drift-baselines
LOCK=requirements/drift-baselines.txt
if [ ! -x .venv/bin/uv ]; then
  echo "error: .venv/bin/uv missing; run 'make setup' first" >&2
  exit 1
fi
# The interpreter .venv was made from: Python 3.10, already found by scripts/bootstrap.sh.
python310=${PYTHON310:-$(.venv/bin/python -c 'import sys; print(sys.base_prefix + "/bin/python3.10")')}
[ -x "$VENV/bin/python" ] || "$python310" -m venv "$VENV"
digest=$(sha256sum "$LOCK" | cut -d' ' -f1)
if [ "$(cat "$VENV/.lock-digest" 2>/dev/null)" != "$digest" ]; then
  echo "drift-baselines: syncing $VENV with $LOCK"
  .venv/bin/uv pip sync --quiet --python "$VENV/bin/python" "$LOCK"
  echo "$digest" > "$VENV/.lock-digest"
fi
"$VENV/bin/python" -c "import alibi_detect, evidently; print('alibi-detect', alibi_detect.__version__, '/ evidently', evidently.__version__)"
