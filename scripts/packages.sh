# SPDX-License-Identifier: BSL-1.0
# Sourced by scripts/test, scripts/demo and scripts/bench.
# ensure_packages PACKAGE...: installs the Debian packages that are not installed yet (apt-get,
# as root); otherwise names them and fails.
ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q ' installed$' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}"
    if [ "$(id -u)" != 0 ]; then
        echo "error: missing packages; run as root, or install them first:" >&2
        echo "  sudo apt-get install -y ${missing[*]}" >&2
        return 1
    fi
    apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
}
