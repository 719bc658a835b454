#!/usr/bin/env bash
# Rolling upgrade of the sample pair (samples/ha: node A, node B, the witness) from a previous
# build to the current one, with a call arriving every second, as docs/operations.md
# describes it: upgrade the standby, promote it, upgrade the other node, then the witness.
#
#   scripts/rolling-upgrade.sh [FROM]          # FROM: the previous commit (default HEAD~1)
#
# The previous commit is built in its own worktree and target directory (PREV_TARGET,
# default under the work directory; give an existing one to reuse it), or PREV_BIN names a
# binary already built. The current one is this tree's (CUR_BIN, default target/$PROFILE/svi,
# built, or brought up to date, by the script). PROFILE: release (default) or debug.
#
# The "PBX" sends one short call per second (sipp's built-in uac scenario) to node A, and to
# node B when A refuses it or does not answer: what a PBX does with a primary and an
# overflow. Writes bench/results/rolling-upgrade-<stamp>.md with every step's time, the
# calls answered and refused, and the longest time no call was answered; exits 1 if that is
# longer than TAKEOVER_MS (default 2500: two election timeouts and a lease of the samples'
# timings, 2 x 1000 + 250 ms, rounded up), or if the two nodes end with different records.
#
# Once B is active on the new build, a burst of BURST short calls (default 200, at BURST_RATE
# per second, default 20) is sent to B while A and the witness still run the previous one: B's writes then arrive
# together, and A must apply every entry B writes (a release before group commit cannot read
# a batch entry, so B writes one entry per write until every member reads batches).
set -euo pipefail
cd "$(dirname "$0")/.."
FROM="${1:-HEAD~1}"
PROFILE="${PROFILE:-release}"
TAKEOVER_MS="${TAKEOVER_MS:-2500}"
BURST="${BURST:-200}"
BURST_RATE="${BURST_RATE:-20}"
command -v sipp >/dev/null || { echo "sipp is needed (apt-get install sip-tester)"; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
  touch "$work/stop" 2>/dev/null || true
  for p in "${pids[@]:-}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -d "$work/prev-src" ]; then git worktree remove --force "$work/prev-src" || true; fi
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
now_ms() { date +%s%3N; }
t0=$(now_ms)
log() { echo "$(( $(now_ms) - t0 )) ms: $*" | tee -a "$work/steps"; }
flag=""; [ "$PROFILE" = release ] && flag="--release"

prev_rev=$(git rev-parse --short "$FROM")
cur_rev=$(git rev-parse --short HEAD)
if [ -z "${PREV_BIN:-}" ]; then
  git worktree add --detach "$work/prev-src" "$FROM" >/dev/null
  target="${PREV_TARGET:-$work/prev-target}"
  (cd "$work/prev-src" && CARGO_TARGET_DIR="$target" cargo build $flag --bin svi --quiet)
  # Copied out: PREV_TARGET may be this tree's own target, whose svi the next build replaces.
  cp "$target/$PROFILE/svi" "$work/svi-prev"
  PREV_BIN="$work/svi-prev"
fi
if [ -z "${CUR_BIN:-}" ]; then
  cargo build $flag --bin svi --quiet
  CUR_BIN="target/$PROFILE/svi"
fi
echo "from $prev_rev ($PREV_BIN) to $cur_rev ($CUR_BIN)"

status() { "$CUR_BIN" ha status --json --data-dir "$1" 2>/dev/null || true; }
field() { status "$1" | sed -n "s/^  \"$2\": *\"\{0,1\}\([a-z0-9]*\)\"\{0,1\},\{0,1\}$/\1/p" | head -1; }
wait_role() { # dir role seconds
  local end=$((SECONDS + $3))
  while [ $SECONDS -lt $end ]; do [ "$(field "$1" role)" = "$2" ] && return 0; done
  echo "$1 did not become $2 within $3 s: $(status "$1")"; return 1
}
wait_caught_up() { # standby-dir active-dir seconds
  local end=$((SECONDS + $3))
  while [ $SECONDS -lt $end ]; do
    local s a
    s=$(field "$1" applied_index); a=$(field "$2" commit_index)
    [ -n "$s" ] && [ "$s" = "$a" ] && return 0
  done
  echo "$1 did not catch up with $2"; return 1
}
declare -A pid_of
start() { # name bin
  local cmd=run conf="samples/ha/node-$1.toml"
  [ "$1" = w ] && { cmd=witness; conf=samples/ha/witness.toml; }
  "$2" "$cmd" --config "$conf" --data-dir "$work/$1" --log "info,openraft=error" \
    >>"$work/$1.log" 2>&1 &
  pid_of[$1]=$!; pids+=($!)
}
stop() { # name: SIGTERM, as systemctl stop does
  kill -TERM "${pid_of[$1]}"; wait "${pid_of[$1]}" 2>/dev/null || true
}

# The previous release's pair, formed and serving.
start w "$PREV_BIN"; start a "$PREV_BIN"; start b "$PREV_BIN"
wait_role "$work/a" active 60
wait_role "$work/b" standby 30
log "pair formed on $prev_rev: A active, B standby"

# The PBX: one call per second, to A, else to B. Each attempt is its own process.
attempt() { # k
  local start_ms end_ms node=none
  start_ms=$(now_ms)
  for port in 5061 5062; do
    if sipp "127.0.0.1:$port" -sn uac -m 1 -d 200 -i 127.0.0.1 -p $((40000 + $1 % 4000)) \
         -mp $((44000 + ($1 % 500) * 4)) -nostdin -timeout 2s -timeout_error >/dev/null 2>&1; then
      node=$port; break
    fi
  done
  end_ms=$(now_ms)
  echo "$1 $start_ms $end_ms $node" >> "$work/calls"
}
(
  k=0; begin=$(now_ms)
  while [ ! -e "$work/stop" ]; do
    due=$((begin + k * 1000)); now=$(now_ms)
    [ "$now" -lt "$due" ] && sleep "$(printf '0.%03d' $((due - now)))"
    attempt "$k" &
    k=$((k + 1))
  done
  wait
) &
pids+=($!)
sleep 5

# 1. Upgrade the standby (B): stop, check the migration on its data, start the new build.
stop b
log "B stopped ($prev_rev)"
"$CUR_BIN" migrate --check --data-dir "$work/b" | sed 's/^/    /' | tee -a "$work/steps"
start b "$CUR_BIN"
wait_role "$work/b" standby 60
wait_caught_up "$work/b" "$work/a" 60
log "B on $cur_rev, standby, caught up"
sleep 5
# 2. Promote it: A steps aside, B becomes active.
"$CUR_BIN" ha promote --data-dir "$work/b" >/dev/null
wait_role "$work/b" active 30
log "B promoted: active on $cur_rev"
sleep 5
# 2b. A burst of short calls on B while A and the witness still run the previous build.
sipp 127.0.0.1:5062 -sn uac -r "$BURST_RATE" -m "$BURST" -d 200 -i 127.0.0.1 -p 39500 -mp 48000 \
  -nostdin -timeout 60s -trace_stat -stf "$work/burst.csv" >/dev/null 2>&1 || true
# SuccessfulCall(C), the 16th field of sipp's statistics, on its last line.
burst_ok=$(tail -1 "$work/burst.csv" | awk -F';' '{ print $16 }')
wait_caught_up "$work/a" "$work/b" 60
log "burst of $BURST calls to B at $BURST_RATE/s ($burst_ok answered): A ($prev_rev) applied every entry B wrote"
# 3. Upgrade the other node (A), which rejoins as standby.
stop a
log "A stopped ($prev_rev)"
"$CUR_BIN" migrate --check --data-dir "$work/a" | sed 's/^/    /' | tee -a "$work/steps"
start a "$CUR_BIN"
wait_role "$work/a" standby 60
wait_caught_up "$work/a" "$work/b" 60
log "A on $cur_rev, standby, caught up"
sleep 5
# 4. The witness.
stop w
start w "$CUR_BIN"
wait_role "$work/w" witness 60
log "witness on $cur_rev"
sleep 5
touch "$work/stop"
sleep 4
log "calls stopped"

# The longest time no call was answered: from the first attempt of a refused run to the
# next answered attempt.
sort -n "$work/calls" > "$work/calls.sorted"
read -r total answered longest refused_at < <(awk '
  { if ($4 == "none") { if (gap_from == "") gap_from = $2; refused++ }
    else { if (gap_from != "") { g = $2 - gap_from; if (g > max) { max = g; at = gap_from } gap_from = "" } answered++ } }
  END { printf "%d %d %d %s\n", NR, answered, max, (at == "" ? "-" : at) }' "$work/calls.sorted")
to_a=$(awk '$4 == 5061' "$work/calls.sorted" | wc -l)
to_b=$(awk '$4 == 5062' "$work/calls.sorted" | wc -l)
ids() { "$CUR_BIN" calls --json --limit 1000000 --data-dir "$1" | sed -n 's/^ *"id": "\(.*\)",$/\1/p' | sort; }
ids "$work/a" > "$work/a.ids"; ids "$work/b" > "$work/b.ids"
same=yes; cmp -s "$work/a.ids" "$work/b.ids" || same=no
records=$(wc -l < "$work/b.ids")

stamp=$(date -u +%Y-%m-%dT%H-%M-%SZ)
mkdir -p bench/results
report="bench/results/rolling-upgrade-$stamp.md"
{
  echo "# Rolling upgrade of the sample pair, $stamp"
  echo
  echo "From $prev_rev to $cur_rev ($PROFILE builds), $(nproc) CPUs, samples/ha timings"
  echo "(heartbeat 50 ms, election timeout 0.5-1 s, lease 250 ms). One call per second"
  echo "(sipp uac), to A, else to B."
  echo
  echo '```'
  cat "$work/steps"
  echo '```'
  echo
  echo "| attempts | answered | by A | by B | longest time without an answered call | bound |"
  echo "|---|---|---|---|---|---|"
  echo "| $total | $answered | $to_a | $to_b | $longest ms | $TAKEOVER_MS ms |"
  echo
  echo "Call records: $records on B; A and B hold the same records: $same."
  echo
  echo "The log formats B heard from the other members (batch entries once all read them):"
  echo
  echo '```'
  grep -h "raft log format" "$work/b.log" | sed 's/^[^ ]*Z //' || true
  echo '```'
} > "$report"
cat "$report"
[ "$same" = yes ] || { echo "FAIL: the nodes hold different records"; exit 1; }
[ "$longest" -le "$TAKEOVER_MS" ] || { echo "FAIL: calls refused for $longest ms"; exit 1; }
echo "OK"
