#!/usr/bin/env bash
# Builds the peer relays that bench/run compares ours with, into
# target/peers/bin (see /work/shared/notes/moq-peers.md):
#
#   moq-relay-ietf   Cloudflare's moq-relay-ietf 0.8.0 (draft-18 only)
#   moq-relay-dev    moq-dev's moq-relay 0.17.10 (drafts 14-22, moq-lite)
#   clock            moq-dev's clock client (moq-tokio 0.19.31's example), for
#                    the interop matrix (interop/run)
#
#   bench/peers.sh            build what is missing
#   bench/peers.sh --force    rebuild them all
#
# Each build takes ~10 min on 2 cores. Set PEERS_WAIT_IDLE=1 to wait until no
# other cargo/rustc runs on the machine before each build (a shared box).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD/target/peers
BIN=$ROOT/bin
mkdir -p "$BIN" "$ROOT/src"
FORCE=${1:-}
step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }

wait_idle() {
  [ "${PEERS_WAIT_IDLE:-0}" = 1 ] || return 0
  while pgrep -f 'rustc|cargo (build|test|install|run)' >/dev/null; do
    echo "   another build is running; waiting 30 s" >&2
    sleep 30
  done
}

# --- Cloudflare moq-relay-ietf 0.8.0: its lock file installs as published.
if [ "$FORCE" = --force ] || [ ! -x "$BIN/moq-relay-ietf" ]; then
  step "moq-relay-ietf 0.8.0 (cargo install --locked)"
  wait_idle
  cargo install --locked --root "$ROOT" moq-relay-ietf@0.8.0
else
  step "moq-relay-ietf: $BIN/moq-relay-ietf exists"
fi

# --- moq-dev moq-relay 0.17.10: `cargo install --locked` fails (the published
# lock pins webpki-roots 1.0.11, which the registry does not serve), so build a
# copy of the crate source with that one pin moved back to 1.0.10.
VER=0.17.10
if [ "$FORCE" = --force ] || [ ! -x "$BIN/moq-relay-dev" ]; then
  step "moq-dev moq-relay $VER (source copy, webpki-roots 1.0.10)"
  crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/moq-relay-$VER.crate 2>/dev/null | head -1 || true)
  if [ -z "$crate" ]; then
    # Let cargo download it: a scratch crate that depends on it, `cargo fetch`.
    scratch=$(mktemp -d)
    mkdir -p "$scratch/src"
    printf '[package]\nname = "peer-fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nmoq-relay = { version = "=%s", default-features = false }\n' "$VER" >"$scratch/Cargo.toml"
    echo 'fn main() {}' >"$scratch/src/main.rs"
    (cd "$scratch" && cargo fetch -q)
    rm -rf "$scratch"
    crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/moq-relay-$VER.crate | head -1)
  fi
  src=$ROOT/src/moq-relay-$VER
  rm -rf "$src"
  tar xzf "$crate" -C "$ROOT/src"
  # Not a member of our workspace, though it sits below it.
  printf '\n[workspace]\n' >>"$src/Cargo.toml"
  (cd "$src" && cargo update -q -p webpki-roots@1.0.11 --precise 1.0.10)
  wait_idle
  (cd "$src" && cargo build --release --locked --no-default-features --features noq,websocket --bin moq-relay \
    --target-dir "$ROOT/build-moq-relay-dev")
  cp "$ROOT/build-moq-relay-dev/release/moq-relay" "$BIN/moq-relay-dev"
else
  step "moq-relay-dev: $BIN/moq-relay-dev exists"
fi

# --- moq-dev's clock client: the `clock` example of moq-tokio, with the same
# webpki-roots pin as moq-relay (the published lock asks for 1.0.11).
TVER=0.19.31
if [ "$FORCE" = --force ] || [ ! -x "$BIN/clock" ]; then
  step "moq-dev clock client (moq-tokio $TVER example, webpki-roots 1.0.10)"
  crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/moq-tokio-$TVER.crate 2>/dev/null | head -1 || true)
  if [ -z "$crate" ]; then
    scratch=$(mktemp -d)
    mkdir -p "$scratch/src"
    printf '[package]\nname = "peer-fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nmoq-tokio = { version = "=%s", default-features = false }\n' "$TVER" >"$scratch/Cargo.toml"
    echo 'fn main() {}' >"$scratch/src/main.rs"
    (cd "$scratch" && cargo fetch -q)
    rm -rf "$scratch"
    crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/moq-tokio-$TVER.crate | head -1)
  fi
  src=$ROOT/src/moq-tokio-$TVER
  rm -rf "$src"
  tar xzf "$crate" -C "$ROOT/src"
  printf '\n[workspace]\n' >>"$src/Cargo.toml"
  (cd "$src" && { cargo update -q -p webpki-roots@1.0.11 --precise 1.0.10 2>/dev/null || true; })
  wait_idle
  # Shares moq-relay's target dir: most of the dependency tree is the same.
  (cd "$src" && cargo build --release --locked --no-default-features --features noq,aws-lc-rs --example clock --target-dir "$ROOT/build-moq-relay-dev")
  cp "$ROOT/build-moq-relay-dev/release/examples/clock" "$BIN/clock"
else
  step "clock: $BIN/clock exists"
fi

step "peers ready"
ls -l "$BIN"
