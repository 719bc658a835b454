#!/usr/bin/env bash
# Runs one coverage-guided fuzz target for a given time (AFL++ through cargo-afl, on the
# stable toolchain): scripts/fuzz.sh TARGET MINUTES
# Targets: sip_message sdp digest rtp_stream rtcp rfc4733 (bodies in sip::fuzzing and
# engine::media::fuzzing). Not part of scripts/test.sh; the inputs that crashed are kept in
# fuzz/regressions/TARGET/ and replayed by the ordinary tests.
# The corpus is seeded from fuzz/seeds/TARGET and the shared conformance corpus
# (../shared/conformance, or SVI_SHARED): whole messages for sip_message, their SDP bodies
# for sdp, their Authorization/WWW-Authenticate values for digest.
# Output: fuzz/out/TARGET (AFL++'s queue, crashes, hangs); a summary line is appended to
# fuzz/out/summary.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."

targets="sip_message sdp digest rtp_stream rtcp rfc4733"
target="${1:-}"
minutes="${2:-}"
if [[ -z "$target" || -z "$minutes" || ! " $targets " =~ " $target " || ! "$minutes" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh TARGET MINUTES (TARGET: $targets)" >&2
  exit 2
fi

if ! cargo afl --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-afl (it builds AFL++ from its bundled source)"
  cargo install --locked cargo-afl
fi
# Builds AFL++'s runtime for this rustc once; an existing build is kept.
cargo afl config --build >/dev/null 2>&1 || true

shared="${SVI_SHARED:-$(cd .. && pwd)/shared}"
seeds="fuzz/out/$target.seeds"
rm -rf "$seeds"
mkdir -p "$seeds"
cp fuzz/seeds/"$target"/* "$seeds"/ 2>/dev/null || true
conformance=()
if [ -d "$shared/conformance" ]; then
  mapfile -t conformance < <(find "$shared/conformance" -type f ! -name 'MANIFEST*' ! -name 'README*' | sort)
fi
case "$target" in
  sip_message)
    for f in "${conformance[@]}"; do cp "$f" "$seeds/conf-$(basename "$(dirname "$f")")-$(basename "$f")"; done ;;
  sdp)
    # The body after the first empty line of messages that carry SDP.
    for f in "${conformance[@]}"; do
      if grep -qa '^v=0' "$f"; then
        awk 'body {print} /^\r?$/ {body=1}' "$f" > "$seeds/conf-$(basename "$f")"
      fi
    done ;;
  digest)
    n=0
    for f in "${conformance[@]}"; do
      { grep -aiE '^(Proxy-)?(Authorization|WWW-Authenticate|Authenticate):' "$f" || true; } |
        while IFS= read -r line; do
          n=$((n + 1))
          printf '%s' "${line#*: }" | tr -d '\r' > "$seeds/conf-$(basename "$f")-$n"
        done
    done ;;
esac
# AFL++ wants small seeds; drop empty ones.
find "$seeds" -type f -empty -delete

export CARGO_TARGET_DIR="$PWD/fuzz/target"
(cd fuzz && cargo afl build --release --quiet --bin "$target")

out="fuzz/out/$target"
mkdir -p "$out"
# -V: stop after this many seconds; -i -: resume an earlier run's queue when there is one.
input="$seeds"
if [ -d "$out/default/queue" ]; then input=-; fi
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
  AFL_NO_AFFINITY=1 AFL_SKIP_CRASHES=1
cargo afl fuzz -V "$((minutes * 60))" -i "$input" -o "$out" "$CARGO_TARGET_DIR/release/$target" \
  > "$out/afl.log" 2>&1 || { tail -30 "$out/afl.log" >&2; exit 1; }

stats="$out/default/fuzzer_stats"
value() { awk -F' *: *' -v k="$1" '$1 == k {print $2}' "$stats"; }
line="$(date -u +%FT%TZ)	$target	$minutes	$(value execs_done)	$(value corpus_count)	$(value bitmap_cvg)	$(value saved_crashes)	$(value saved_hangs)"
[ -f fuzz/out/summary.tsv ] || printf 'date\ttarget\tminutes\texecs\tcorpus\tcoverage\tcrashes\thangs\n' > fuzz/out/summary.tsv
echo "$line" >> fuzz/out/summary.tsv
echo "target $target: $minutes min, $(value execs_done) executions, corpus $(value corpus_count), coverage $(value bitmap_cvg), crashes $(value saved_crashes), hangs $(value saved_hangs)"
if [ "$(value saved_crashes)" != "0" ]; then
  echo "crashing inputs (copy each to fuzz/regressions/$target/ once fixed):"
  ls "$out"/default/crashes/id:* 2>/dev/null
fi
