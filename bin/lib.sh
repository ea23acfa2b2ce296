# Shared by bin/demo, bin/test and .ci/run: a virtual environment with the pinned dependencies,
# and the few Debian packages the project needs. Sourced, never run directly.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GUICHET_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[1;31mERROR: %s\033[0m\n' "$*" >&2; exit 1; }

# Create the virtual environment and install the project with its pinned dependencies.
# Reinstalls only when pyproject.toml changed since the last install (a stamp in the venv).
ensure_venv() {
    local extras="${1:-dev}"
    local python="${PYTHON:-python3}"
    command -v "$python" >/dev/null || die "$python not found: install Python 3.11 or newer"
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "Python 3.11 or newer is needed ($("$python" --version 2>&1) found)"
    if [ ! -x "$PY" ]; then
        say "creating the virtual environment in $VENV"
        "$python" -m venv "$VENV" || die "could not create $VENV (is python3-venv installed?)"
    fi
    local want stamp="$VENV/.guichet-installed"
    want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)-$extras"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! "$PY" -c "import guichet" >/dev/null 2>&1; then
        say "installing Guichet and its pinned dependencies ($extras) into $VENV"
        # (pip's notes about unreachable local package folders in this machine's pip config are noise)
        "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip \
            2> >(grep -v "^WARNING: Location '.*' is ignored" >&2)
        "$PY" -m pip install --quiet --disable-pip-version-check -e "$ROOT[$extras]" \
            2> >(grep -v "^WARNING: Location '.*' is ignored" >&2) \
            || die "pip install failed"
        echo "$want" >"$stamp"
    fi
}

# Install Debian packages that are missing (root needed; says what it does, fails clearly).
APT_UPDATED=""
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing system packages ${missing[*]} and no apt-get: install them by hand"
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || die "missing system packages ${missing[*]}: run as root or install them by hand"
        sudo="sudo"
    fi
    say "installing Debian packages: ${missing[*]} (apt-get)"
    if [ -z "$APT_UPDATED" ]; then
        $sudo apt-get update -qq || die "apt-get update failed"
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        || die "apt-get install ${missing[*]} failed"
}

# WeasyPrint (the PDF poster) needs Pango, and HarfBuzz-Subset to embed fonts (without it,
# WeasyPrint falls back to fontTools, which stamps each embedded font with the current time: the
# same poster would differ from one second to the next); fonts for the poster (Liberation Sans,
# its first choice: narrower than DejaVu Sans, which it falls back to) and the browser tests.
ensure_system_libs() {
    apt_install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-liberation2 fonts-dejavu-core
}

has_catalogues() {
    # find fails on a missing folder: that must not fail the pipeline under pipefail.
    { find "$ROOT/locale" "$ROOT/src/guichet/locale" -name '*.po' 2>/dev/null || true; } | grep -q .
}

# Compile the translation catalogues (locale/ and src/guichet/locale/) when there are any.
compile_messages() {
    has_catalogues || return 0
    command -v msgfmt >/dev/null || apt_install gettext
    say "compiling translation catalogues"
    (cd "$ROOT" && "$VENV/bin/guichet" compilemessages --ignore=.venv --ignore='var' --ignore='node_modules' -v 0) \
        || die "compilemessages failed"
}
