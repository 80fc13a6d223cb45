#!/usr/bin/env bash
# CPU per MOQ leg inside Asterisk 22 (chan_moq), Opus passthrough vs
# transcoding, on this machine; writes bench/results/pbx-legs.md. Root only
# (the chan_moq test harness: Debian sid chroot + network namespace).
#
#   bench/pbx-legs.sh [CALLS] [SECS]     e.g. bench/pbx-legs.sh 5,10,20,40 10
#
# Asterisk is pinned to CPU 0; the relay and the load generator (moq-phones
# in one process) to CPU 1. Each call is one MOQ leg answered by Echo(), so
# every leg receives and sends 50 Opus frames per second.
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${1:-5,10,20}
SECS=${2:-10}
H=chan_moq/harness/asterisk.sh
export MOQ_ASTERISK_INSTANCE=bench-pbx
step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }

step "[1/4] build (release): chan_moq, moq-relay, moq-bench"
cargo build --release -q -p chan_moq -p moq-relay -p moq-bench
step "[2/4] Asterisk chroot and config"
$H build
conf=$(mktemp -d)
trap 'rm -rf "$conf"; $H stop >/dev/null 2>&1 || true' EXIT
write_conf() {
  printf '[general]\nrelay = moqt://127.0.0.1:4443\ninsecure = yes\ncontext = moq-test\ncodecs = %s\n' "$1" >"$conf/moq.conf"
}
write_conf slin48
$H stop >/dev/null 2>&1 || true
MOQ_DIALPLAN='exten => 100,1,Answer()
 same => n,Echo()' $H conf "$conf"
$H install-module target/release/libchan_moq.so
pid=$($H start | sed -n 's/^pid=//p')
taskset -a -p -c 0 "$pid" >/dev/null
ip netns exec "$MOQ_ASTERISK_INSTANCE" taskset -c 1 target/release/moq-relay --bind 127.0.0.1:4443 --max-sessions-per-address 1000000 2>/dev/null &
etc=$($H info | sed -n 's/^ETC=//p')
rows=
for codec in slin48 opus; do
  step "[3/4] codecs = $codec: calls $CALLS, $SECS s each"
  write_conf "$codec"
  cp "$conf/moq.conf" "$etc/moq.conf"
  $H cli 'module reload chan_moq.so' >/dev/null
  for _ in $(seq 100); do $H cli 'moq show status' | grep -q 'Registered:   yes' && break; sleep 0.1; done
  rows+=$(ip netns exec "$MOQ_ASTERISK_INSTANCE" taskset -c 1 target/release/moq-bench pbx-legs \
    --asterisk-pid "$pid" --codec "$codec" --calls "$CALLS" --secs "$SECS")$'\n'
done
step "[4/4] results"
ver=$(chroot "$($H info | sed -n 's/^ROOT=//p')" asterisk -V)
out=bench/results/pbx-legs.md
{
  echo "# MOQ legs in Asterisk: CPU per leg, Opus passthrough vs transcoding"
  echo
  echo "\`bench/pbx-legs.sh $CALLS $SECS\` on $(nproc) cores, $(date -u +%Y-%m-%d). $ver, chan_moq (release build),"
  echo "our moq-relay. Each call: a MoQ phone → \`pbx/100\` → \`Answer(), Echo()\`, so one MOQ leg that receives and"
  echo "sends 50 Opus frames/s. Asterisk pinned to CPU 0; relay and generator to CPU 1. CPU from /proc (user+system)."
  echo
  echo "- **slin48**: chan_moq decodes and encodes Opus itself (libopus) and hands Asterisk 48 kHz PCM."
  echo "- **opus**: Opus packets pass through chan_moq and Echo() untouched (no transcoding anywhere)."
  echo
  echo "| codec | calls | established | Asterisk CPU (% of a core) | per leg (% of a core) | per leg per frame (µs) | generator CPU (%) | Asterisk RSS (MiB) |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s' "$rows"
} >"$out"
cat "$out"
