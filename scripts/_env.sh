# Shared by scripts/run and scripts/test: make (or reuse) the project's virtualenv and install into it.
# Sourced, not executed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CLEANGATE_VENV:-$ROOT/.venv}"

pick_python() {
    # The OCR wheel (rapidocr-onnxruntime 1.4.4) supports Python 3.10–3.12.
    for candidate in python3.11 python3.12 python3.10 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)'; then
            echo "$candidate"
            return 0
        fi
    done
    echo "cleangate needs Python 3.10-3.12 (found: $(python3 --version 2>&1))" >&2
    return 1
}

ensure_venv() {
    local extras="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        "$(pick_python)" -m venv "$VENV"
    fi
    local stamp="$VENV/.cleangate-installed-$extras"
    # Reinstall only when the project's dependencies changed: keeps the second start fast.
    if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
        echo "installing cleangate[$extras] into $VENV ..." >&2
        local log="$VENV/install.log"
        if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[$extras]" >"$log" 2>&1; then
            cat "$log" >&2
            echo "installation failed (log: $log)" >&2
            return 1
        fi
        "$VENV/bin/python" -c "import gate_service, plate_reader, blacklist, cv2, asyncpg, aiohttp" || {
            echo "installation failed" >&2
            return 1
        }
        touch "$stamp"
    fi
}
