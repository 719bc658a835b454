#!/usr/bin/env bash
# Failover benchmark (issue 5, issue 12): time from kill -9 of the active node to the standby
# answering an INVITE with 200, over N runs (default 20) of the three sample processes on
# loopback. Writes bench/results/failover-<stamp>.md and prints median and worst.
# Timings: the samples' (samples/ha/*.toml) unless HEARTBEAT_MS, ELECTION_MIN_MS,
# ELECTION_MAX_MS and LEASE_MS are given (all four; the same on the three members).
# Each run's phases (kill -> campaign -> active -> call answered) come from node-b's log.
# Needs: a built svi (release by default: BIN=target/release/svi) and sipp.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-20}"
BIN="${BIN:-target/release/svi}"
[ -x "$BIN" ] || cargo build --release --bin svi --quiet
command -v sipp >/dev/null || { echo "sipp is needed (apt-get install sip-tester)"; exit 1; }
work=$(mktemp -d)
cfg=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work" "$cfg"; }
trap cleanup EXIT

# The samples with their relative paths made absolute, and the timings if given.
samples="$PWD/samples/ha"
for m in node-a node-b witness; do
  sed -e "s|\"\.\./|\"$samples/../|g" "$samples/$m.toml" > "$cfg/$m.toml"
  if [ -n "${ELECTION_MAX_MS:-}" ]; then
    sed -i -e "s/^heartbeat_ms = .*/heartbeat_ms = $HEARTBEAT_MS/" \
      -e "s/^election_timeout_min_ms = .*/election_timeout_min_ms = $ELECTION_MIN_MS/" \
      -e "s/^election_timeout_max_ms = .*/election_timeout_max_ms = $ELECTION_MAX_MS/" \
      -e "s/^lease_ms = .*/lease_ms = $LEASE_MS/" "$cfg/$m.toml"
  fi
done
timing() { sed -n "s/^$1 = \([0-9]*\).*/\1/p" "$cfg/node-a.toml"; }
timings="heartbeat $(timing heartbeat_ms) ms, election timeout $(timing election_timeout_min_ms)-$(timing election_timeout_max_ms) ms, lease $(timing lease_ms) ms"

role() { "$BIN" ha status --json --data-dir "$1" 2>/dev/null | sed -n 's/.*"role": *"\([a-z]*\)".*/\1/p' | head -1; }
wait_role() { # dir role seconds
  local end=$((SECONDS + $3))
  while [ $SECONDS -lt $end ]; do [ "$(role "$1")" = "$2" ] && return 0; done
  return 1
}
now_ms() { date +%s%3N; }

times=(); phases=(); campaign=(); elected=(); answer=()
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{ if (NR==0) print "?"; else if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2) }'; }
logs() { for m in w a b; do echo "--- $m.log (last lines)"; tail -n 40 "$work/$m.log"; done; }
stop_all() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
clashes=0
run=0
while [ "$run" -lt "$RUNS" ]; do
  run=$((run + 1))
  rm -rf "${work:?}"/*; pids=()
  "$BIN" witness --config "$cfg/witness.toml" --data-dir "$work/w" >"$work/w.log" 2>&1 & pids+=($!)
  "$BIN" run --config "$cfg/node-a.toml" --data-dir "$work/a" >"$work/a.log" 2>&1 & a=$!; pids+=($a)
  "$BIN" run --config "$cfg/node-b.toml" --data-dir "$work/b" >"$work/b.log" 2>&1 & pids+=($!)
  if ! wait_role "$work/a" active 30 || ! wait_role "$work/b" standby 30; then
    # Another program on this host took one of the samples' fixed ports: not a run.
    if grep -q 'Address already in use' "$work"/*.log && [ "$clashes" -lt 5 ]; then
      clashes=$((clashes + 1)); echo "run $run: a sample's port was taken; again"
      stop_all; run=$((run - 1)); continue
    fi
    echo "run $run: the pair did not form"; logs; exit 1
  fi
  start=$(now_ms)
  kill -9 "$a"
  # An INVITE every attempt until one is answered 200 (sipp's built-in uac, a short call).
  attempts=0
  while :; do
    tried=$(now_ms); attempts=$((attempts + 1))
    sipp 127.0.0.1:5062 -sn uac -m 1 -i 127.0.0.1 -p 5098 -nostdin -timeout 1s -timeout_error \
      -d 10 >/dev/null 2>&1 && break
    [ $(( $(now_ms) - start )) -gt 30000 ] && { echo "run $run: no takeover in 30 s"; exit 1; }
  done
  done_at=$(now_ms)
  ms=$(( done_at - start ))
  times+=("$ms")
  # Where the time went, from node-b's log (its timestamps and this host's clock):
  # campaign = kill -> node-b starts campaigning ("the leader is silent: campaigning"),
  # elected = campaign -> node-b publishes `active` (pre-vote, election, first commit,
  # role), answer = active -> the answered sipp call ended (the attempt that got the 200
  # started `last` ms after the kill; attempts before it got 503).
  log_ms() { date -d "$1" +%s%3N; }
  c_ts=$(grep -m1 'the leader is silent: campaigning' "$work/b.log" | awk '{print $1}')
  a_ts=$(grep 'ha role changed' "$work/b.log" | grep 'to=active' | tail -1 | sed -n 's/.* at=\([^ ]*\).*/\1/p')
  if [ -n "$c_ts" ] && [ -n "$a_ts" ]; then
    c=$(( $(log_ms "$c_ts") - start )); act=$(( $(log_ms "$a_ts") - start ))
    phases+=("| $run | $c | $((act - c)) | $((ms - act)) | $((tried - start)) | $attempts | $ms |")
    campaign+=("$c"); elected+=("$((act - c))"); answer+=("$((ms - act))")
    echo "run $run: $ms ms (campaign at $c, active at $act, attempts $attempts)"
  else
    phases+=("| $run | ? | ? | ? | $((tried - start)) | $attempts | $ms |")
    echo "run $run: $ms ms (phases not found in node-b's log)"
  fi
  stop_all
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(med "${times[@]}")
worst=$(printf '%s\n' "$sorted" | tail -1)
best=$(printf '%s\n' "$sorted" | head -1)
stamp=$(date -u +%Y-%m-%dT%H-%M-%SZ)
mkdir -p bench/results
{
  echo "# Failover benchmark, $stamp"
  echo
  echo "kill -9 of the active node to the standby answering INVITE with 200 (sipp uac, loopback),"
  echo "$timings, $RUNS runs, $(nproc) CPUs, $BIN,"
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
  echo
  echo "| runs | best ms | median ms | worst ms |"
  echo "|---|---|---|---|"
  echo "| $RUNS | $best | $median | $worst |"
  echo
  echo "Each run, ms: ${times[*]}"
  echo
  echo "Where the time went (ms after the kill; medians: campaign $(med "${campaign[@]}"),"
  echo "elected $(med "${elected[@]}"), answer $(med "${answer[@]}")):"
  echo
  echo "| run | kill -> campaign | campaign -> active | active -> call done | last attempt started | attempts | total |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${phases[@]}"
} > "bench/results/failover-$stamp.md"
echo "median ${median} ms, worst ${worst} ms ($timings; bench/results/failover-$stamp.md)"
