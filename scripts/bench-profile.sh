#!/usr/bin/env bash
# Instruction profile of the engine's media path under callgrind, for before/after figures
# on a busy machine: instruction counts do not depend on the load, wall-clock figures do.
#
#   scripts/bench-profile.sh [prompt|relay|recorded] [CALLS]
#
# Starts an engine (release build) under `valgrind --tool=callgrind` on free loopback ports,
# places CALLS calls with svi-load (prompt: the benchmark's prompt flow; relay: every call
# bridged to svi-load's target role, four streams per call; recorded: the same with 20 %
# recorded), counts instructions for PROFILE_SECS seconds once every call is up, then
# prints the user-space instructions (Ir) per RTP packet the engine sent (calls of
# `sendto`: one per packet relayed or played) and the top entries, self and inclusive.
# Kernel time (socket system calls) is not counted: see perf in scripts/bench.sh for that.
#
# Knobs: PROFILE_SECS (10), PROFILE_OUT (directory kept with callgrind.out and the logs;
# default a new temporary directory), PROFILE_BUILD (1: build the release binaries first;
# 0: use those in the target dir), SVI_BIN and LOAD_BIN (other binaries: the engine of
# another commit, for a before/after pair with the same generator). Defaults: relay, 20 calls (2,000 RTP packets/s each way
# through the engine, what callgrind keeps up with on one core).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE="${1:-relay}"
CALLS="${2:-20}"
SECS="${PROFILE_SECS:-10}"
BUILD="${PROFILE_BUILD:-1}"
OUT="${PROFILE_OUT:-$(mktemp -d -t svi-profile.XXXXXX)}"
mkdir -p "$OUT"
case "$MODE" in
  prompt) CONFIG=bench/svi-bench.toml ;;
  relay) CONFIG=bench/svi-bench-relay.toml ;;
  recorded) CONFIG=bench/svi-bench-recorded.toml ;;
  *) echo "usage: $0 [prompt|relay|recorded] [CALLS]" >&2; exit 2 ;;
esac
log() { printf '[profile %4ds] %s\n' "$SECONDS" "$*" >&2; }

if [ "$BUILD" = 1 ]; then
  log "building (release)"
  cargo build --release --quiet --bin svi
  cargo build --release --quiet -p svi-tests --bin svi-load
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SVI="${SVI_BIN:-$TARGET_DIR/release/svi}"
LOAD="${LOAD_BIN:-$TARGET_DIR/release/svi-load}"

PIDS=()
cleanup() {
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

free_port() { # a UDP port on 127.0.0.1 that nothing listens on, from $1 upwards
  local p
  for p in $(seq "$1" $(($1 + 200))); do
    if ! ss -Hlun "sport = :$p" 2>/dev/null | grep -q .; then echo "$p"; return; fi
  done
  return 1
}
PORT=$(free_port 16260)
ADDR="127.0.0.1:$PORT"
log "$MODE: $CALLS calls, engine under callgrind on $ADDR, $SECS s counted"
RUST_LOG=info valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$OUT/callgrind.out" \
  "$SVI" run --config "$CONFIG" --data-dir "$OUT/data" \
  --sip-listen "$ADDR" --rtp-ports 31000-31999 >"$OUT/valgrind.log" 2>&1 &
VG_PID=$!
PIDS+=("$VG_PID")
"$LOAD" ping --target "$ADDR" --timeout 120s || { log "the engine did not start"; exit 1; }

EXTRA=()
if [ "$MODE" != prompt ]; then
  ANSWER=$(free_port $((PORT + 100)))
  EXTRA=(--service "$ANSWER" --answer-on "127.0.0.1:$ANSWER")
  [ "$MODE" = recorded ] && EXTRA+=(--record-percent 20 --recordings-dir "$OUT/data/recordings")
fi
WINDOW="callgrind_control -i on $VG_PID >/dev/null 2>&1; sleep $SECS; callgrind_control -i off $VG_PID >/dev/null 2>&1"
"$LOAD" calls --target "$ADDR" --pid "$VG_PID" --calls "$CALLS" --rate 10 --dtmf-at 1s \
  --hold "$((SECS + 4))s" --settle 3s --invite-timeout 30s --max-p99-ms 100000 \
  --max-loss-pct 100 --label "profile-$MODE" --json "$OUT/load.json" "${EXTRA[@]}" \
  --exec-when-up "$WINDOW" >"$OUT/load.log" 2>&1 || log "svi-load reported a failure (see $OUT/load.log)"
kill -TERM "$VG_PID" 2>/dev/null || true
for _ in $(seq 1 300); do kill -0 "$VG_PID" 2>/dev/null || break; sleep 0.1; done

# Calls of a function over the whole profile: the sum of `calls=` lines after each
# `cfn=` naming it (callgrind's compressed names: "(id) name" once, "(id)" after).
calls_of() { # calls_of REGEX FILE...
  awk -v re="$1" '
    /^c?fn=\(/ {
      id = $0; sub(/^c?fn=/, "", id); name = id; sub(/\).*/, ")", id)
      sub(/^\([0-9]+\) ?/, "", name)
      if (name != "") names[id] = name
      if ($0 ~ /^cfn=/) callee = id
      next
    }
    /^calls=/ { split($0, f, /[= ]/); n[callee] += f[2] }
    END { for (id in n) if (names[id] ~ re) total += n[id]; printf "%d\n", total }
  ' "${@:2}"
}
FILES=("$OUT"/callgrind.out*)
callgrind_annotate --inclusive=yes "${FILES[@]}" >"$OUT/inclusive.txt" 2>/dev/null || true
callgrind_annotate --inclusive=no "${FILES[@]}" >"$OUT/self.txt" 2>/dev/null || true
TOTAL=$(awk '/PROGRAM TOTALS/ {gsub(/,/, "", $1); print $1}' "$OUT/self.txt")
SENT=$(calls_of '^(__libc_)?sendto$' "${FILES[@]}")
RECV=$(calls_of '^(__libc_)?recvfrom$' "${FILES[@]}")
{
  echo "callgrind, $MODE, $CALLS calls, $SECS s counted (commit $(git rev-parse --short HEAD))"
  echo "Ir total: $TOTAL; sendto calls: $SENT; recvfrom calls (with the empty reads): $RECV"
  if [ "${SENT:-0}" -gt 0 ]; then
    echo "Ir per packet sent: $((TOTAL / SENT))"
  fi
  echo
  echo "Inclusive (callgrind_annotate --inclusive=yes), top entries:"
  grep -E '^ *[0-9,]+ +\(' "$OUT/inclusive.txt" | sed -n 2,41p \
    | sed -E 's#[^ ]*/\.cargo/registry/src/[^/]*/##g; s#/rustc/[0-9a-f]+/library/#std/#g' | cut -c1-170
  echo
  echo "Self (callgrind_annotate --inclusive=no), top entries:"
  grep -E '^ *[0-9,]+ +\(' "$OUT/self.txt" | sed -n 2,31p \
    | sed -E 's#[^ ]*/\.cargo/registry/src/[^/]*/##g; s#/rustc/[0-9a-f]+/library/#std/#g' | cut -c1-170
} | tee "$OUT/summary.txt"
log "kept in $OUT"
