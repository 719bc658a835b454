#!/usr/bin/env bash
# The wallboard benchmark (issue 15, acceptance 3; method and figures: docs/performance.md).
#
# Starts an engine on loopback with 50 agents (their phones are svi-load's answering role:
# every agent's `contact` is its port) and one queue, `support`, that every call joins
# (a flow written by the script); logs the agents in and makes them ready; then svi-load
# places WALL_CALLS calls (300): 50 are bridged to agents, the others wait in the queue.
# While the calls are up, sipp adds WALL_CHURN new calls per second (5) that join the queue
# and hang up after 3 s (abandoned): the changes a wallboard must follow (each is ACD and call
# events on the feed). It measures two windows of WALL_SECONDS each on the same engine:
#   1. idle: no wallboard open;
#   2. clients: WALL_CLIENTS wallboards (bench/wallboard_clients.py: the event feed plus a
#      page fetch per event, one at a time, and one every 5 s, as the page's script does)
#      and, when Debian's
#      chromium and chromium-driver are installed, one real headless Chromium on the page.
# Reports the engine's CPU time per second in each window (from /proc: user + system, so
# it means something on a busy machine) and their ratio, and the page's fetch and update
# latency p50/p99 (update: the engine's time stamp of an event -> the page that shows it
# received). Writes bench/results/wallboard-<UTC stamp>.md and .json (WALL_OUT).
#
# Knobs (environment): WALL_CALLS (300), WALL_AGENTS (50), WALL_CLIENTS (20), WALL_SECONDS
# (30), WALL_CHURN (5), WALL_PROFILE (release | debug: debug skips the release build, for a try on a busy
# machine), WALL_CHROMIUM (auto | none), WALL_OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CALLS="${WALL_CALLS:-300}"
AGENTS="${WALL_AGENTS:-50}"
CLIENTS="${WALL_CLIENTS:-20}"
CHURN="${WALL_CHURN:-5}"
SECONDS_EACH="${WALL_SECONDS:-30}"
PROFILE="${WALL_PROFILE:-release}"
CHROMIUM="${WALL_CHROMIUM:-auto}"
OUT="${WALL_OUT:-$ROOT/bench/results}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

log() { printf '[wallboard %4ds] %s\n' "$SECONDS" "$*" >&2; }

# --- the measuring step, run by svi-load once every call is up -----------------------------
if [ "${1:-}" = "measure" ]; then
  cpu() { awk '{ print $14 + $15 }' "/proc/$ENGINE_PID/stat"; }
  tck=$(getconf CLK_TCK)
  # sipp's own short calls: no media, 3 s each, from a port of its own.
  sipp -sn uac -r "$CHURN" -d 3000 -i 127.0.0.1 -p "$CHURN_PORT" -s 100 \
    -trace_err -error_file "$WORK/churn-errors.log" "127.0.0.1:$SIP_PORT" \
    > "$WORK/churn.log" 2>&1 < /dev/null &
  churn=$!
  sleep 5
  log "calls up, $CHURN new calls/s: idle window (${SECONDS_EACH}s, no wallboard)"
  c0=$(cpu); t0=$(date +%s.%N)
  sleep "$SECONDS_EACH"
  c1=$(cpu); t1=$(date +%s.%N)
  log "clients window (${SECONDS_EACH}s, $CLIENTS wallboards${DRIVER_URL:+ and Chromium})"
  args=(--admin "$ADMIN" --key "$KEY" --clients "$CLIENTS" --seconds "$SECONDS_EACH")
  if [ -n "${DRIVER_URL:-}" ]; then
    args+=(--chromium "$DRIVER_URL" --user wallboard --password "$PASSWORD")
  fi
  c2=$(cpu); t2=$(date +%s.%N)
  python3 "$ROOT/bench/wallboard_clients.py" "${args[@]}" > "$WORK/clients.json"
  c3=$(cpu); t3=$(date +%s.%N)
  kill "$churn" 2>/dev/null || true
  wait "$churn" 2>/dev/null || true
  curl -sk -H "Authorization: Bearer $KEY" "$ADMIN/api/v1/queues" > "$WORK/queues.json" || true
  python3 - "$tck" "$c0" "$c1" "$t0" "$t1" "$c2" "$c3" "$t2" "$t3" > "$WORK/cpu.json" <<'PY'
import json, sys
tck, c0, c1, t0, t1, c2, c3, t2, t3 = map(float, sys.argv[1:])
idle = (c1 - c0) / tck / (t1 - t0)
busy = (c3 - c2) / tck / (t3 - t2)
print(json.dumps({"idle_cpu_s_per_s": round(idle, 4), "clients_cpu_s_per_s": round(busy, 4),
                  "ratio": round(busy / idle, 2) if idle > 0 else None,
                  "feed_cpu_s_per_s": round(busy - idle, 4)}))
PY
  exit 0
fi

# --- setup ----------------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/svi-wallboard.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$PROFILE" = "release" ]; then
  log "building svi and svi-load (release)"
  cargo build --release --quiet --bin svi
  cargo build --release --quiet -p svi-tests --bin svi-load
else
  cargo build --quiet --bin svi
  cargo build --quiet -p svi-tests --bin svi-load
fi
SVI="$TARGET_DIR/$PROFILE/svi"
LOAD="$TARGET_DIR/$PROFILE/svi-load"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SIP_PORT=$(free_port)
ADMIN_PORT=$(free_port)
ANSWER_PORT=$(free_port)
ADMIN="https://127.0.0.1:$ADMIN_PORT"
DATA="$WORK/data"
mkdir -p "$DATA" "$WORK/flows"
# Every call goes straight to the queue (the wallboard's subject, not the flow).
cat > "$WORK/flows/wallboard.yaml" <<'EOF'
flow: wallboard
language: en
start: to_queue
steps:
  to_queue:
    queue: support
    overflow: end
  end:
    hangup:
EOF

{
  cat <<EOF
[node]
name = "svi-wallboard"

[sip]
listen = "127.0.0.1:$SIP_PORT"
transports = ["udp"]
allowed_networks = ["127.0.0.0/8"]
force_rport = true
max_calls = 3000
max_calls_per_second = 0

[rtp]
ports = "20000-29999"
timeout_secs = 60
workers = 0

[prompts]
dir = "$ROOT/samples/prompts"
default_language = "en"

[flows]
dir = "$WORK/flows"
default = "wallboard"

[[routes]]
number = "*"
flow = "wallboard"

[admin]
listen = "127.0.0.1:$ADMIN_PORT"

# Every call waits here until an agent is free; nothing is announced or recorded.
[[queues]]
id = "support"
name = "Support"
skills = { support = 1 }
ring_timeout = 15000
wrap_up = 0
max_wait = 3600000
EOF
  for i in $(seq 1 "$AGENTS"); do
    id=$((2000 + i))
    printf '\n[[agents]]\nid = "%s"\nname = "Agent %s"\ncontact = "sip:%s@127.0.0.1:%s"\nskills = { support = 1 }\n' \
      "$id" "$id" "$id" "$ANSWER_PORT"
  done
} > "$WORK/svi.toml"

PASSWORD="screens for the supervisors $(date +%s)"
"$SVI" user add wallboard --role supervisor --password-stdin --config "$WORK/svi.toml" \
  --data-dir "$DATA" <<< "$PASSWORD" >/dev/null
KEY=$("$SVI" apikey create --role supervisor --name bench --config "$WORK/svi.toml" --data-dir "$DATA")

log "starting the engine ($PROFILE) with $AGENTS agents"
"$SVI" run --config "$WORK/svi.toml" --data-dir "$DATA" --log warn > "$WORK/engine.log" 2>&1 &
ENGINE_PID=$!
PIDS+=("$ENGINE_PID")
for _ in $(seq 1 100); do
  curl -sk -o /dev/null "$ADMIN/api/v1/health" && break
  sleep 0.2
done
for i in $(seq 1 "$AGENTS"); do
  "$SVI" agent login $((2000 + i)) --config "$WORK/svi.toml" --data-dir "$DATA" >/dev/null
  "$SVI" agent ready $((2000 + i)) --config "$WORK/svi.toml" --data-dir "$DATA" >/dev/null
done

DRIVER_URL=""
if [ "$CHROMIUM" != "none" ] && command -v chromedriver >/dev/null && command -v chromium >/dev/null; then
  DRIVER_PORT=$(free_port)
  chromedriver --port="$DRIVER_PORT" >/dev/null 2>&1 &
  PIDS+=("$!")
  DRIVER_URL="http://127.0.0.1:$DRIVER_PORT"
  for _ in $(seq 1 50); do curl -s -o /dev/null "$DRIVER_URL/status" && break; sleep 0.2; done
fi

CHURN_PORT=$(free_port)
export ENGINE_PID ADMIN KEY PASSWORD DRIVER_URL WORK SECONDS_EACH CLIENTS CHURN CHURN_PORT SIP_PORT
HOLD=$((2 * SECONDS_EACH + 40))
log "placing $CALLS calls, held ${HOLD}s"
"$LOAD" calls --target "127.0.0.1:$SIP_PORT" --pid "$ENGINE_PID" --calls "$CALLS" \
  --hold "${HOLD}s" --no-dtmf --answer-on "127.0.0.1:$ANSWER_PORT" \
  --exec-when-up "$ROOT/scripts/bench-wallboard.sh measure" --json "$WORK/load.json" \
  > "$WORK/load.txt" 2>&1 || log "svi-load: $(tail -3 "$WORK/load.txt")"

# --- report ---------------------------------------------------------------------------------
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
python3 - "$WORK" "$OUT/wallboard-$stamp" "$PROFILE" "$CALLS" "$AGENTS" \
  "$(git rev-parse --short HEAD)" <<'PY'
import json, os, sys
work, out, profile, calls, agents, commit = sys.argv[1:]
def load(name):
    try:
        return json.load(open(os.path.join(work, name)))
    except (OSError, ValueError):
        return None
clients, cpu, queues = load("clients.json"), load("cpu.json"), load("queues.json")
q = next((x for x in (queues or []) if x.get("id") == "support"), {})
result = {"commit": commit, "profile": profile, "calls": int(calls), "agents": int(agents),
          "queue_at_end": {k: q.get(k) for k in ("waiting", "talking", "offered")},
          "cpu": cpu, "clients": clients}
json.dump(result, open(out + ".json", "w"), indent=2)
c, u = clients or {}, (cpu or {})
lines = [
    f"# Wallboard benchmark ({commit}, {profile} build)", "",
    f"{calls} calls held, {agents} agents, and short calls joining and leaving the queue; "
    f"at the end: {q.get('talking')} talking, {q.get('waiting')} waiting in `support`.", "",
    "| window | engine CPU (s per s) |", "|---|---|",
    f"| idle (no wallboard) | {u.get('idle_cpu_s_per_s')} |",
    f"| {c.get('clients')} wallboards{' + Chromium' if c.get('chromium_updates') else ''} | {u.get('clients_cpu_s_per_s')} |",
    f"| ratio | {u.get('ratio')} |", "",
    "| latency (ms) | p50 | p99 | max |", "|---|---|---|---|",
]
for name, key in (("page fetch", "fetch_ms"), ("update (event -> page received)", "update_ms"),
                  ("Chromium update (event -> page re-rendered)", "chromium_update_ms")):
    v = c.get(key) or {}
    lines.append(f"| {name} | {v.get('p50')} | {v.get('p99')} | {v.get('max')} |")
lines += ["", f"Events per client: {c.get('events_per_client')}; fetches: {c.get('fetches')}; "
          f"errors: {c.get('errors')}; Chromium updates: {c.get('chromium_updates')}."]
open(out + ".md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
