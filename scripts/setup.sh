#!/usr/bin/env bash
# Creates .venv with chinwag and its dependencies. Usage: scripts/setup.sh [--test]
# --test also installs the test tools and the Node.js interop harness from its lockfile.
# Idempotent: a second run only reinstalls when pyproject.toml or the lockfile changed.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# 1. A Python >= 3.11.
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.13 python3.12 python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 &&
       "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      PY="$cand"; break
    fi
  done
fi
[ -n "$PY" ] || die "chinwag needs Python 3.11 or newer (none found on PATH). Install it, or set PYTHON=/path/to/python3.11."
"$PY" -c 'import venv, ensurepip' 2>/dev/null ||
  die "$PY lacks venv/ensurepip. On Debian/Ubuntu: sudo apt-get install python3-venv"

# 2. System packages: fastecdsa (pulled in by libp2p) builds from source and needs
#    a C compiler and the GMP headers.
have_gmp() {
  for d in /usr/include /usr/local/include /opt/homebrew/include /usr/include/x86_64-linux-gnu /usr/include/aarch64-linux-gnu; do
    [ -f "$d/gmp.h" ] && return 0
  done
  return 1
}
need_pkgs=()
command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || command -v clang >/dev/null 2>&1 || need_pkgs+=(compiler)
have_gmp || need_pkgs+=(gmp)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(uname)" = "Darwin" ]; then
    if command -v brew >/dev/null 2>&1; then
      say "installing GMP with Homebrew"; brew install gmp
    else
      die "need a C compiler and GMP: run 'xcode-select --install' and 'brew install gmp'"
    fi
  elif command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    if [ -n "$SUDO" ] && ! sudo -n true 2>/dev/null; then
      die "need a C compiler and the GMP headers: run 'sudo apt-get install build-essential libgmp-dev python3-dev', then run this again"
    fi
    say "installing build-essential, libgmp-dev and python3-dev with apt-get"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq build-essential libgmp-dev python3-dev >/dev/null
  else
    die "need a C compiler and the GMP headers (gmp.h): install them with your system's package manager, then run this again"
  fi
fi

# 3. The virtual environment.
# The stamp records which pyproject.toml was installed and whether the test extras came with it;
# a plain run is satisfied by either, a test run needs the extras.
stamp=$("$PY" -c 'import hashlib,sys; print(hashlib.sha256(open("pyproject.toml","rb").read()).hexdigest())')
installed=$(cat .venv/.chinwag-stamp 2>/dev/null || true)
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $PY"
  "$PY" -m venv .venv
fi
if [ "$installed" != "$stamp test" ] && { [ $want_test -eq 1 ] || [ "$installed" != "$stamp run" ]; }; then
  say "installing chinwag into .venv (first time takes about a minute)"
  .venv/bin/python -m pip install -q --upgrade pip
  if [ $want_test -eq 1 ]; then
    .venv/bin/python -m pip install -q -e '.[test]'
    echo "$stamp test" > .venv/.chinwag-stamp
  else
    .venv/bin/python -m pip install -q -e .
    echo "$stamp run" > .venv/.chinwag-stamp
  fi
fi

# 4. The Node.js interop harnesses (tests only), exactly as their lockfiles say. Each folder
#    under tests/interop with a package-lock.json is one harness.
if [ $want_test -eq 1 ]; then
  mapfile -t locks < <(find tests/interop -name package-lock.json -not -path '*/node_modules/*' 2>/dev/null | sort)
  if [ ${#locks[@]} -gt 0 ]; then
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
      die "the interop tests need Node.js >= 20 and npm. On Debian/Ubuntu: sudo apt-get install nodejs npm; on macOS: brew install node"
    node -e 'process.exit(parseInt(process.versions.node) >= 20 ? 0 : 1)' ||
      die "the interop tests need Node.js >= 20 (found $(node --version))"
  fi
  for lock in "${locks[@]}"; do
    dir=$(dirname "$lock")
    lock_hash=$("$PY" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$lock")
    if [ "$(cat "$dir/node_modules/.chinwag-stamp" 2>/dev/null)" != "$lock_hash" ]; then
      say "installing the Node.js harness in $dir from its lockfile"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
      echo "$lock_hash" > "$dir/node_modules/.chinwag-stamp"
    fi
  done
fi
# 5. iptables (tests only) for the impaired-network tests' fallback where the kernel has no
#    sch_netem (tests/harness/impairment.py). Those tests need root anyway, so only root
#    installs it, and only with apt-get; otherwise they skip and say why. Never fatal.
if [ $want_test -eq 1 ] && [ "$(id -u)" -eq 0 ] && ! command -v iptables >/dev/null 2>&1 &&
   command -v apt-get >/dev/null 2>&1; then
  say "installing iptables with apt-get (for the impaired-network tests)"
  { apt-get install -y -qq iptables >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq iptables >/dev/null 2>&1; }; } ||
    say "could not install iptables; the impaired-network tests will skip"
fi
# 6. PostgreSQL and Chromium (tests only): the telemetry collector's tests run against a real
#    PostgreSQL server they start themselves (tests/harness/postgres.py), and check the report's
#    HTML page in a real headless Chromium (tests/harness/browser.py). Installed with apt-get
#    as root only; elsewhere those tests skip and say why. Never fatal.
if [ $want_test -eq 1 ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt_pkgs=()
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 ||
    apt_pkgs+=(postgresql)
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ||
    apt_pkgs+=(chromium)
  if [ ${#apt_pkgs[@]} -gt 0 ]; then
    say "installing ${apt_pkgs[*]} with apt-get (for the telemetry collector's tests)"
    { apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null 2>&1; }; } ||
      say "could not install ${apt_pkgs[*]}; the tests that need them will skip"
  fi
fi
# 7. systemd-analyze and bubblewrap (tests only): tests/packaging checks the systemd unit
#    with the one and runs the node in a sandbox like the unit's with the other. Root with
#    apt-get only; elsewhere those tests skip and say why. Never fatal.
if [ $want_test -eq 1 ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt_pkgs=()
  command -v systemd-analyze >/dev/null 2>&1 || apt_pkgs+=(systemd)
  command -v bwrap >/dev/null 2>&1 || apt_pkgs+=(bubblewrap)
  if [ ${#apt_pkgs[@]} -gt 0 ]; then
    say "installing ${apt_pkgs[*]} with apt-get (for the packaging tests)"
    { apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 &&
        apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null 2>&1; }; } ||
      say "could not install ${apt_pkgs[*]}; the tests that need them will skip"
  fi
fi
say "ready"
