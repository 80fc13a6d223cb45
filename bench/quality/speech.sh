#!/usr/bin/env bash
# bench/quality/speech.sh [OUTDIR] — the reference speech the quality harness plays into calls
# (issue 19, docs/design/quality.md §2.2).
#
# Writes OUTDIR/a.wav and OUTDIR/b.wav (default OUTDIR = target/quality): 48 kHz, mono, 16-bit PCM,
# 25-28 s each, spoken by espeak-ng (party A: voice en-us+m3, party B: en-us+f2), Harvard sentences
# (IEEE 1969 lists 1 and 2, public domain), ~650 ms pauses between sentences — except from 7 s to 16 s,
# where sentences follow each other with 60 ms gaps so that an outage at 9-14 s (link.rs OUTAGE_AT =
# 10 s after the proxy starts) always falls on speech and the recovery time can be measured.
# Beside each WAV, OUTDIR/a.txt / b.txt: one line per sentence, "start_s end_s text".
#
# Deterministic: same text, same voice, same espeak-ng and sox give the same bytes (no dither, sox's
# fixed random seed). Cached: nothing is redone while OUTDIR/speech.stamp matches this script and the
# tool versions.
#
# Needs Debian's espeak-ng and sox (small, no other heavy dependency):
#     apt-get install -y espeak-ng sox          (as root; run `apt-get update` once first)
# Exits 2 with a one-line message if either is missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/target/quality}

for tool in espeak-ng sox soxi; do
  if ! command -v "$tool" >/dev/null; then
    echo "speech.sh: $tool not found; install it with: apt-get install -y espeak-ng sox" >&2
    exit 2
  fi
done

RATE=48000
PAUSE=0.65          # s between sentences
TIGHT=0.06          # s between sentences in the outage zone
ZONE_FROM=7.0       # s: from here ...
ZONE_TO=16.0        # ... to here no pause longer than TIGHT
LENGTH=24.0         # s: stop adding sentences once the speech reaches this

# Harvard sentences, IEEE Recommended Practice for Speech Quality Measurements (1969), lists 1 and 2.
A_TEXT=(
  "The birch canoe slid on the smooth planks."
  "Glue the sheet to the dark blue background."
  "It's easy to tell the depth of a well."
  "These days a chicken leg is a rare dish."
  "Rice is often served in round bowls."
  "The juice of lemons makes fine punch."
  "The box was thrown beside the parked truck."
  "The hogs were fed chopped corn and garbage."
  "Four hours of steady work faced us."
  "A large size in stockings is hard to sell."
  "The boy was there when the sun rose."
  "A rod is used to catch pink salmon."
)
B_TEXT=(
  "The source of the huge river is the clear spring."
  "Kick the ball straight and follow through."
  "Help the woman get back to her feet."
  "A pot of tea helps to pass the evening."
  "Smoky fires lack flame and heat."
  "The soft cushion broke the man's fall."
  "The salt breeze came across from the sea."
  "The girl at the booth sold fifty bonds."
  "The small pup gnawed a hole in the sock."
  "The fish twisted and turned on the bent hook."
  "Press the pants and sew a button on the vest."
  "The swan dive was far short of perfect."
)

stamp="$(sha256sum "$0" | cut -c1-16) $(espeak-ng --version | head -1) $(sox --version | head -1)"
if [[ -f $out/speech.stamp && -f $out/a.wav && -f $out/b.wav && "$(cat "$out/speech.stamp")" == "$stamp" ]]; then
  echo "speech.sh: $out/a.wav, b.wav up to date" >&2
  exit 0
fi

mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# make NAME VOICE SENTENCE... : OUTDIR/NAME.wav and NAME.txt
make() {
  local name=$1 voice=$2; shift 2
  local parts=() t=0 i=0 text dur gap
  : >"$tmp/$name.txt"
  for text in "$@"; do
    i=$((i + 1))
    # espeak-ng speaks at 22.05 kHz; trim its leading/trailing silence, then resample to 48 kHz.
    espeak-ng -v "$voice" -w "$tmp/raw$i.wav" "$text"
    sox -D -R "$tmp/raw$i.wav" -r "$RATE" -b 16 -c 1 "$tmp/$name$i.wav" \
      gain -6 silence 1 0.005 0.2% reverse silence 1 0.005 0.2% reverse rate -v "$RATE"
    dur=$(soxi -D "$tmp/$name$i.wav")
    if ((i > 1)); then
      # the gap before this sentence: tight if it would start or end inside the outage zone
      gap=$(awk -v t="$t" -v d="$dur" -v p="$PAUSE" -v g="$TIGHT" -v a="$ZONE_FROM" -v b="$ZONE_TO" \
        'BEGIN { s = t + p; print ((s + d > a && t < b) ? g : p) }')
      sox -D -R -n -r "$RATE" -b 16 -c 1 "$tmp/gap$i.wav" trim 0 "$gap"
      parts+=("$tmp/gap$i.wav")
      t=$(awk -v t="$t" -v g="$gap" 'BEGIN { printf "%.6f", t + g }')
    else
      # 300 ms of silence first, so the call's first frames are not speech
      sox -D -R -n -r "$RATE" -b 16 -c 1 "$tmp/lead.wav" trim 0 0.3
      parts+=("$tmp/lead.wav")
      t=0.3
    fi
    parts+=("$tmp/$name$i.wav")
    printf '%.3f %.3f %s\n' "$t" "$(awk -v t="$t" -v d="$dur" 'BEGIN { print t + d }')" "$text" >>"$tmp/$name.txt"
    t=$(awk -v t="$t" -v d="$dur" 'BEGIN { printf "%.6f", t + d }')
    if awk -v t="$t" -v l="$LENGTH" 'BEGIN { exit !(t >= l) }'; then break; fi
  done
  # 500 ms of silence at the end; peak normalised to -3 dBFS (the same gain for every sentence)
  sox -D -R -n -r "$RATE" -b 16 -c 1 "$tmp/tail.wav" trim 0 0.5
  sox -D -R "${parts[@]}" "$tmp/tail.wav" -b 16 "$tmp/$name.wav" norm -3
  mv "$tmp/$name.wav" "$out/$name.wav"
  mv "$tmp/$name.txt" "$out/$name.txt"
  echo "speech.sh: $out/$name.wav $(soxi -D "$out/$name.wav") s, $(wc -l <"$out/$name.txt") sentences" >&2
}

make a en-us+m3 "${A_TEXT[@]}"
make b en-us+f2 "${B_TEXT[@]}"
echo "$stamp" >"$out/speech.stamp"
