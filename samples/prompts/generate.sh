#!/usr/bin/env bash
# Regenerates the sample prompts from prompts.txt and fragments.txt (language<TAB>name<TAB>text)
# with espeak-ng and sox: 8 kHz, 16-bit, mono WAV under <language>/<name>.wav.
# The generated files are committed; run this only after changing the texts.
# Needs: apt-get install -y espeak-ng sox
set -euo pipefail
cd "$(dirname "$0")"
voice() { case "$1" in fr) echo "fr-fr" ;; *) echo "en-us" ;; esac; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for list in prompts.txt fragments.txt; do
  while IFS=$'\t' read -r lang name text; do
    [ -z "${lang:-}" ] && continue
    case "$lang" in \#*) continue ;; esac
    out="$lang/$name.wav"
    mkdir -p "$(dirname "$out")"
    espeak-ng -v "$(voice "$lang")" -s 165 -w "$tmp/raw.wav" "$text"
    # Resample once here (the engine would too), trim leading/trailing silence, keep a
    # little air at the end, and normalise to -3 dBFS.
    sox "$tmp/raw.wav" -r 8000 -c 1 -b 16 "$out" silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse pad 0 0.15 gain -n -3
  done < "$list"
done
# The beep before a message recording: 400 ms at 1 kHz.
for lang in $(cut -f1 prompts.txt | sort -u); do
  sox -n -r 8000 -c 1 -b 16 "$lang/beep.wav" synth 0.4 sine 1000 gain -n -6
done
# Music on hold: a quiet, slow arpeggio (8 s, loops cleanly).
for lang in $(cut -f1 prompts.txt | sort -u); do
  sox -n -r 8000 -c 1 -b 16 "$tmp/n1.wav" synth 2 sine 440 fade 0.1 2 0.5 gain -18
  sox -n -r 8000 -c 1 -b 16 "$tmp/n2.wav" synth 2 sine 554 fade 0.1 2 0.5 gain -18
  sox -n -r 8000 -c 1 -b 16 "$tmp/n3.wav" synth 2 sine 659 fade 0.1 2 0.5 gain -18
  sox -n -r 8000 -c 1 -b 16 "$tmp/n4.wav" synth 2 sine 554 fade 0.1 2 0.5 gain -18
  sox "$tmp/n1.wav" "$tmp/n2.wav" "$tmp/n3.wav" "$tmp/n4.wav" "$lang/music_on_hold.wav"
done
echo "prompts generated"
