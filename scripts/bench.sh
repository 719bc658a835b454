#!/usr/bin/env bash
# The capacity benchmark (method and latest figures: docs/performance.md).
#
# Builds svi and the load generator (svi-load) in release mode, starts the engine on
# loopback with a temporary data directory, then measures, each phase within a time budget:
#   1. concurrent calls: a ramp of steps held 30 s each, until loss > 0.1 % or p99 > 10 ms;
#   2. the same steps against a minimal UDP echo (the cost floor of moving the packets), plus
#      the echo steps with the relay variants' packet rates (twice their calls);
#   3. the relay variants, each on a fresh engine: calls bridged to the generator's target
#      role (four streams per call), with 0 % and 20 % of them recorded (the engine records
#      bridged calls only); a shorter ramp (BENCH_RELAY_STEPS held BENCH_RELAY_HOLD), and
#      the recordings counted after each step;
#   4. calls per second with sipp (short calls, 60 s confirmation), and sipp against a sipp
#      UAS at the same rate as the baseline;
#   5. a profile of the engine (perf if hardware counters work here, else callgrind, plus
#      perf's software clock when perf runs).
# Writes bench/results/<UTC stamp>.{md,json} and bench/results/latest.{md,json}.
# Finishes in 8 to 14 minutes on 2 cores, depending on how far the ramp goes (14.5 at most);
# every process it starts is stopped on exit. Builds into $CARGO_TARGET_DIR when set (else
# ./target).
#
# Knobs (environment): BENCH_STEPS, BENCH_HOLD, BENCH_RAMP_BUDGET, BENCH_ECHO_HOLD,
# BENCH_RELAY_STEPS, BENCH_RELAY_HOLD, BENCH_RELAY_BUDGET (each variant),
# BENCH_CPS_BUDGET, BENCH_CPS_SETTLE, BENCH_CPS_BASE_BUDGET, BENCH_CPS_CONFIRM, BENCH_CPS_MAX,
# BENCH_PROFILE
# (auto|perf|callgrind|none), BENCH_OUT. A reduced run for trying the script out:
#   BENCH_STEPS=50,100 BENCH_HOLD=5s BENCH_RAMP_BUDGET=60 BENCH_RELAY_STEPS=50,100 \
#   BENCH_RELAY_HOLD=5s BENCH_RELAY_BUDGET=30 BENCH_CPS_CONFIRM=10s BENCH_CPS_BUDGET=45 \
#   BENCH_CPS_BASE_BUDGET=35 BENCH_PROFILE=none BENCH_OUT=/tmp/bench \
#   ./scripts/bench.sh                                            # about 4 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

STEPS="${BENCH_STEPS:-100,200,300,400,500,600,700,800,900,1000,1200,1400,1600,2000}"
HOLD="${BENCH_HOLD:-30s}"
RAMP_BUDGET="${BENCH_RAMP_BUDGET:-300}"
ECHO_HOLD="${BENCH_ECHO_HOLD:-6s}"
RELAY_STEPS="${BENCH_RELAY_STEPS:-100,200,300,400,500}"
RELAY_HOLD="${BENCH_RELAY_HOLD:-15s}"
RELAY_BUDGET="${BENCH_RELAY_BUDGET:-105}"
CPS_BUDGET="${BENCH_CPS_BUDGET:-130}"
# After the engine's last trial: wait this long (Timer L/J of its last calls, 64 x T1 = 32 s,
# and the allocator's purge) and read its RSS again. On top of CPS_BUDGET.
CPS_SETTLE="${BENCH_CPS_SETTLE:-40}"
CPS_BASE_BUDGET="${BENCH_CPS_BASE_BUDGET:-80}"
CPS_CONFIRM="${BENCH_CPS_CONFIRM:-60s}"
CPS_MAX="${BENCH_CPS_MAX:-2000}"
PROFILE="${BENCH_PROFILE:-auto}"
OUT="${BENCH_OUT:-$ROOT/bench/results}"
# Hard ceiling for the whole run; phases shrink their budgets to stay under it.
LIMIT=$((14 * 60 + 30))

log() { printf '[bench %4ds] %s\n' "$SECONDS" "$*" >&2; }

install_debian() {
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
  fi
}

# Every process started here, stopped on any exit (success, error, Ctrl-C, kill): the
# engines by pid, each measuring step in its own process group (svi-load and the sipp or
# echo processes it starts), run in the background so that a signal interrupts the `wait`.
PIDS=()
CHILD=""
TMP=$(mktemp -d -t svi-bench.XXXXXX)
run() {
  setsid -w "$@" &
  CHILD=$!
  local rc=0
  wait "$CHILD" || rc=$?
  CHILD=""
  return "$rc"
}
cleanup() {
  local status=$?
  if [ -n "$CHILD" ]; then
    kill -TERM -- "-$CHILD" 2>/dev/null || true
    sleep 0.5
    kill -KILL -- "-$CHILD" 2>/dev/null || true
  fi
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]:-}"; do
    [ -z "$pid" ] && continue
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ]; then
    log "failed (exit $status); logs kept in $TMP"
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Seconds left before the ceiling, minus what later phases need.
left() { echo $((LIMIT - SECONDS - $1)); }
budget() { # budget WANTED RESERVE -> min(WANTED, time left after RESERVE), at least 0
  local l; l=$(left "$2")
  if [ "$l" -lt "$1" ]; then echo $((l > 0 ? l : 0)); else echo "$1"; fi
}

# --- tools -------------------------------------------------------------------------------
missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
if [ "$PROFILE" = auto ] || [ "$PROFILE" = perf ]; then
  command -v perf >/dev/null 2>&1 || missing+=(linux-perf)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  install_debian "${missing[@]}" || log "could not install ${missing[*]}"
fi
command -v sipp >/dev/null 2>&1 || { log "sipp is required"; exit 1; }
perf_works() { # hardware counters (absent in many VMs, where perf says "not supported")
  local out
  command -v perf >/dev/null 2>&1 && out=$(perf stat -e instructions true 2>&1) \
    && ! grep -q 'not supported' <<<"$out"
}
if [ "$PROFILE" = auto ]; then
  if perf_works; then PROFILE=perf; else PROFILE=callgrind; fi
fi
if [ "$PROFILE" = callgrind ] && ! command -v valgrind >/dev/null 2>&1; then
  install_debian valgrind || { log "no valgrind: no profile"; PROFILE=none; }
fi
log "profiler: $PROFILE"

# --- build -------------------------------------------------------------------------------
log "building (release)"
cargo build --release --quiet --bin svi
cargo build --release --quiet -p svi-tests --bin svi-load
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SVI="$TARGET_DIR/release/svi"
LOAD="$TARGET_DIR/release/svi-load"

# --- run facts ---------------------------------------------------------------------------
STAMP=$(date -u +%Y-%m-%dT%H-%M-%SZ)
NPROC=$(nproc)
MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//; s/"/'"'"'/g')
MEM_MIB=$(awk '/MemTotal/ {printf "%d", $2/1024}' /proc/meminfo)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

# --- engine ------------------------------------------------------------------------------
free_port() { # a UDP port on 127.0.0.1 that nothing listens on
  local p
  for p in $(seq "$1" $(($1 + 200))); do
    if ! ss -Hlun "sport = :$p" 2>/dev/null | grep -q .; then echo "$p"; return; fi
  done
  return 1
}
STARTED_PID=""
start_engine() { # start_engine NAME CONFIG ADDR RTP-RANGE: sets STARTED_PID once it answers
  log "starting the engine ($1, $2) on $3"
  RUST_LOG=info "$SVI" run --config "$2" --data-dir "$TMP/data-$1" \
    --sip-listen "$3" --rtp-ports "$4" >"$TMP/engine-$1.log" 2>&1 &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  if ! "$LOAD" ping --target "$3" --timeout 30s || ! kill -0 "$STARTED_PID" 2>/dev/null; then
    log "the engine ($1) did not start: $(tail -3 "$TMP/engine-$1.log")"
    return 1
  fi
}
stop_engine() { # stop_engine PID: TERM, then up to 15 s for it to exit
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
}
ENGINE_PORT=$(free_port 15060)
ENGINE="127.0.0.1:$ENGINE_PORT"
start_engine main bench/svi-bench.toml "$ENGINE" 20000-29999 || exit 1
ENGINE_PID=$STARTED_PID

# --- 1. concurrent calls -----------------------------------------------------------------
# Reserved for the later phases: echo 90, relay variants 2 x 105, calls per second 130 + 40
# (RSS settle) + 80, profile and report 45.
RAMP=$(budget "$RAMP_BUDGET" 595)
log "ramp: steps $STEPS, hold $HOLD, budget ${RAMP}s"
run "$LOAD" calls --target "$ENGINE" --pid "$ENGINE_PID" --steps "$STEPS" --hold "$HOLD" \
  --rate 200 --dtmf-at 3s --digit 1 --deadline "${RAMP}s" --label engine \
  --json "$TMP/ramp.json"

# --- 2. the echo baseline over the same steps ---------------------------------------------
# Plus twice the relay steps: a bridged call has four streams, an echo call two, so the echo
# at 2N calls carries the packet rate of N bridged calls.
ECHO_STEPS=$(tr ',' '\n' <<<"$RELAY_STEPS" | awk '{printf "%s%d", (NR > 1 ? "," : ""), 2 * $1}')
ECHO_BUDGET=$(budget 90 505)
log "echo baseline: ramp steps and $ECHO_STEPS, hold $ECHO_HOLD, budget ${ECHO_BUDGET}s"
run "$LOAD" calls --echo --steps-from "$TMP/ramp.json" --steps "$ECHO_STEPS" --hold "$ECHO_HOLD" \
  --rate 1000 --dtmf-at 3s --max-loss-pct 100 --max-p99-ms 100000 --deadline "${ECHO_BUDGET}s" \
  --label echo --json "$TMP/echo.json" || log "echo baseline failed"

# --- 3. the relay variants ------------------------------------------------------------------
# Each on a fresh engine (so that RSS per call compares), with the flow `relay`: the call is
# bridged to svi-load's target role, listening at the port it dials (bench/flows/relay.yaml).
# The limits are the ramp's; the report also checks the issue's (loss < 0.1 %, p99 <= 5 ms).
relay_variant() { # relay_variant NAME CONFIG PERCENT RESERVE
  local b port answer addr pid
  b=$(budget "$RELAY_BUDGET" "$4")
  if [ "$b" -lt 30 ]; then log "relay variant $1: no time left (${b}s)"; return 0; fi
  port=$(free_port 15160)
  addr="127.0.0.1:$port"
  answer=$(free_port $((port + 100)))
  start_engine "$1" "$2" "$addr" 40000-49999 || return 0
  pid=$STARTED_PID
  log "relay variant $1 ($3 % recorded): steps $RELAY_STEPS, hold $RELAY_HOLD, budget ${b}s"
  # The deadline leaves 10 s of the budget for the teardown.
  run "$LOAD" calls --target "$addr" --pid "$pid" --service "$answer" \
    --answer-on "127.0.0.1:$answer" --record-percent "$3" --recordings-dir "$TMP/data-$1/recordings" \
    --steps "$RELAY_STEPS" --hold "$RELAY_HOLD" --rate 200 --dtmf-at 3s --digit 1 \
    --deadline "$((b - 10))s" --label "$1" --json "$TMP/variant-$1.json" \
    || log "relay variant $1 failed"
  stop_engine "$pid"
}
relay_variant relay bench/svi-bench-relay.toml 0 400
relay_variant recorded bench/svi-bench-recorded.toml 20 295
# The recordings once the engine has closed them: what the recorded variant really wrote.
REC_DIR="$TMP/data-recorded/recordings"
REC_FILES=$(find "$REC_DIR" -name '*.wav' 2>/dev/null | wc -l)
REC_BYTES=$(find "$REC_DIR" -name '*.wav' -printf '%s\n' 2>/dev/null | awk '{s+=$1} END {print s+0}')
REC_CALLS=$(grep -o '"placed": *[0-9]*' "$TMP/variant-recorded.json" 2>/dev/null | grep -o '[0-9]*$' || echo 0)
log "recorded variant: $REC_FILES WAV files, $REC_BYTES bytes, for $REC_CALLS calls"
[ "$REC_FILES" -gt 0 ] || [ ! -s "$TMP/variant-recorded.json" ] || log "WARNING: no recording was written"

# --- 4. calls per second -----------------------------------------------------------------
mkdir -p "$TMP/cps" "$TMP/cps-base"
SETTLE=$CPS_SETTLE
B=$(budget $((CPS_BUDGET + SETTLE)) 125)
[ "$B" -gt $((SETTLE + 60)) ] || SETTLE=0
log "calls per second (engine): budget ${B}s, RSS read again ${SETTLE}s after the last trial"
run "$LOAD" cps --target "$ENGINE" --pid "$ENGINE_PID" --budget "$((B - SETTLE))s" \
  --rss-settle "${SETTLE}s" --confirm "$CPS_CONFIRM" --max-rate "$CPS_MAX" --dir "$TMP/cps" \
  --json "$TMP/cps.json" || log "cps (engine) failed"
B=$(budget "$CPS_BASE_BUDGET" 45)
# The baseline runs at the engine's confirmed rate (CPU per call at the same rate), then
# probes upwards: how far the sipp pair itself goes on this machine.
AT=$(grep -o '"confirmed_rate": *[0-9]*' "$TMP/cps.json" 2>/dev/null | grep -o '[0-9]*$' || true)
[ -n "$AT" ] || AT=$(grep -o '"best_probe_rate": *[0-9]*' "$TMP/cps.json" 2>/dev/null | grep -o '[0-9]*$' || true)
[ -n "$AT" ] || AT=250
log "calls per second (sipp UAS baseline) at ${AT}/s, then upwards: budget ${B}s"
run "$LOAD" cps --baseline --at "$AT" --budget "${B}s" --confirm "$CPS_CONFIRM" --max-rate "$CPS_MAX" \
  --dir "$TMP/cps-base" --json "$TMP/cps-base.json" || log "cps (baseline) failed"

# --- 5. profile --------------------------------------------------------------------------
# With hardware counters, perf samples the running engine at the highest step that passed
# the ramp. Without them (most VMs) the profile is callgrind's: it slows the engine some 50
# times, so it profiles a second engine under valgrind carrying 50 calls; perf then still
# samples the running engine at the highest step with the software clock (cpu-clock), which
# unlike callgrind also sees the time spent in the kernel.
PROFILE_TXT="$TMP/profile.txt"
: >"$PROFILE_TXT"
shorten() { # readable profile lines: drop registry/toolchain paths and object names
  sed -E -e 's#/root/\.cargo/registry/src/[^/]*/##g; s#[^ ]*/\.cargo/registry/src/[^/]*/##g' \
    -e 's#/rustc/[0-9a-f]+/library/#std/#g; s#\./[a-z]+/\./[a-z]+/#glibc/#g; s#\./[a-z]+/\.\./#glibc/#g' \
    -e "s#$ROOT/##g; s# \[[^]]*\]\$##" | cut -c1-170
}
PROFILE_CALLS=$(grep -o '"max_passing_calls": *[0-9]*' "$TMP/ramp.json" | grep -o '[0-9]*$' || true)
[ "${PROFILE_CALLS:-0}" -gt 0 ] || PROFILE_CALLS=100

perf_profile() { # perf_profile EVENT: 10 s of samples of the engine at $PROFILE_CALLS calls
  log "profile: perf record -e $1 on the engine, $PROFILE_CALLS calls"
  run "$LOAD" calls --target "$ENGINE" --pid "$ENGINE_PID" --calls "$PROFILE_CALLS" --hold 12s \
    --rate 400 --dtmf-at 1s --max-p99-ms 100000 --max-loss-pct 100 --label profile \
    --json "$TMP/profile-perf.json" \
    --exec-when-up "perf record -e $1 -F 999 -g -p $ENGINE_PID -o $TMP/perf.data -- sleep 10 >/dev/null 2>&1" \
    || { log "perf profile failed"; return 0; }
  {
    echo "perf record -e $1 -F 999 -g: 10 s of the engine at $PROFILE_CALLS calls (user and kernel)."
    echo "Self time by object and symbol (perf report --no-children), entries of 1 % or more:"
    perf report -i "$TMP/perf.data" --stdio --no-children --sort dso,symbol --percent-limit 1 2>/dev/null \
      | grep -E '^ +[0-9.]+%' | sed -E 's/ +- +- +$//; s/ +$//' | head -30
    echo
    echo "Share of samples in the kernel: $(perf report -i "$TMP/perf.data" --stdio --no-children \
      --sort dso 2>/dev/null | grep -E '^ +[0-9.]+%' | grep kernel | awk '{s+=$1} END {printf "%.1f %%", s}')"
    echo
  } >>"$PROFILE_TXT" || true
}

callgrind_profile() {
  local vg_port vg vg_pid calls=50
  vg_port=$(free_port 16060)
  vg="127.0.0.1:$vg_port"
  log "profile: callgrind, a second engine on $vg, $calls calls"
  RUST_LOG=info valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$TMP/callgrind.out" \
    "$SVI" run --config bench/svi-bench.toml --data-dir "$TMP/vg-data" \
    --sip-listen "$vg" --rtp-ports 30000-30999 >"$TMP/valgrind.log" 2>&1 &
  vg_pid=$!
  PIDS+=("$vg_pid")
  if ! "$LOAD" ping --target "$vg" --timeout 90s; then
    log "the engine under valgrind did not start"
    return 0
  fi
  run "$LOAD" calls --target "$vg" --pid "$vg_pid" --calls "$calls" --rate 25 --dtmf-at 1s \
    --hold 12s --settle 3s --invite-timeout 20s --max-p99-ms 100000 --max-loss-pct 100 \
    --label profile --json "$TMP/profile-callgrind.json" \
    --exec-when-up "callgrind_control -i on $vg_pid >/dev/null 2>&1; sleep 10; callgrind_control -i off $vg_pid >/dev/null 2>&1" \
    || log "callgrind load failed"
  kill -TERM "$vg_pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$vg_pid" 2>/dev/null || break; sleep 0.1; done
  {
    echo "valgrind --tool=callgrind: 10 s of steady state at $calls calls; user-space instructions"
    echo "(Ir) only, time in the kernel (socket system calls, wake-ups) is not counted."
    echo
    echo "Self cost by function (callgrind_annotate --inclusive=no):"
    callgrind_annotate --inclusive=no "$TMP"/callgrind.out* 2>/dev/null \
      | grep -E '^ *[0-9,]+ +\(' | head -25 | shorten
    echo
    echo "Inclusive cost (callgrind_annotate --inclusive=yes), top entries:"
    callgrind_annotate --inclusive=yes "$TMP"/callgrind.out* 2>/dev/null \
      | grep -E '^ *[0-9,]+ +\(' | head -30 | shorten
    echo
  } >>"$PROFILE_TXT" || true
}

case "$PROFILE" in
  perf) perf_profile cycles ;;
  callgrind)
    if command -v perf >/dev/null 2>&1; then perf_profile cpu-clock; fi
    callgrind_profile
    ;;
esac

# --- stop, report ------------------------------------------------------------------------
stop_engine "$ENGINE_PID"

cat >"$TMP/meta.json" <<EOF
{"stamp": "$STAMP", "nproc": $NPROC, "cpu_model": "$MODEL", "mem_mib": $MEM_MIB,
 "commit": "$COMMIT", "engine": "svi run (release), bench/svi-bench.toml, info logging",
 "profiler": "$PROFILE", "bench_secs": $SECONDS,
 "steps": "$STEPS", "hold": "$HOLD", "echo_hold": "$ECHO_HOLD", "cps_confirm": "$CPS_CONFIRM",
 "relay_steps": "$RELAY_STEPS", "relay_hold": "$RELAY_HOLD",
 "recordings": {"files": $REC_FILES, "bytes": $REC_BYTES, "calls": ${REC_CALLS:-0}}}
EOF
"$LOAD" report --out-dir "$OUT" --stamp "$STAMP" --meta "$TMP/meta.json" \
  --ramp "$TMP/ramp.json" --baseline "$TMP/echo.json" --cps "$TMP/cps.json" \
  --cps-baseline "$TMP/cps-base.json" \
  --variant "$TMP/variant-relay.json,$TMP/variant-recorded.json" --profile "$PROFILE_TXT"
log "done in ${SECONDS}s: $OUT/$STAMP.md"
