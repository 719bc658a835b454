#!/usr/bin/env python3
"""Wallboard clients for scripts/bench-wallboard.sh (standard library only).

Each client does what the wallboard page's script does (admin/src/web/assets/app.js,
setupLive): it reads the event feed (GET /api/v1/events, server-sent events) and, on each
event, fetches the page's content (GET /ui/wallboard?part=main), one fetch at a time, an
event arriving meanwhile asking for one more, and once every 5 s in any case (the clocks on
the page). Two figures per fetch:
  - fetch latency: request sent -> whole page received;
  - update latency: the engine's time stamp of the event (`at`, Unix ms) -> page received,
    for the first event a fetch answers (what a viewer sees: the change on screen).
One client may be a real headless Chromium (--chromium URL of a chromedriver): it signs in,
opens the wallboard, and the page itself records, for each `acd` event, the time until its
next re-render (a MutationObserver on #main).
Prints one JSON object: the figures of every client, merged.
"""

import argparse
import http.client
import json
import ssl
import threading
import time
import urllib.request

CTX = ssl._create_unverified_context()  # the engine's self-signed certificate, on loopback


def connect(host, port):
    return http.client.HTTPSConnection(host, port, context=CTX, timeout=30)


class Client(threading.Thread):
    def __init__(self, host, port, key, until):
        super().__init__(daemon=True)
        self.host, self.port, self.key, self.until = host, port, key, until
        self.fetch_ms, self.update_ms = [], []
        self.events = 0
        self.errors = 0
        self.pending_at = None  # `at` of the first event not yet shown
        self.cv = threading.Condition()

    def headers(self):
        return {"Authorization": "Bearer " + self.key}

    def feed(self):
        conn = connect(self.host, self.port)
        conn.request("GET", "/api/v1/events", headers=self.headers())
        resp = conn.getresponse()
        if resp.status != 200:
            self.errors += 1
            return
        data = []
        while time.time() < self.until:
            line = resp.readline()
            if not line:
                break
            line = line.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                text = "\n".join(data)
                data = []
                at = None
                try:
                    at = json.loads(text).get("at")
                except (ValueError, AttributeError):
                    pass
                with self.cv:
                    self.events += 1
                    if self.pending_at is None:
                        self.pending_at = at if at else time.time() * 1000
                    self.cv.notify()
        conn.close()

    def run(self):
        threading.Thread(target=self.feed, daemon=True).start()
        conn = connect(self.host, self.port)
        last = time.time()
        while time.time() < self.until:
            with self.cv:
                while (self.pending_at is None and time.time() < self.until
                       and time.time() < last + 5):
                    self.cv.wait(0.2)
                if time.time() >= self.until:
                    break
                at, self.pending_at = self.pending_at, None
            t0 = time.time()
            try:
                conn.request("GET", "/ui/wallboard?part=main", headers=self.headers())
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = connect(self.host, self.port)
            t1 = time.time()
            last = t1
            if not ok:
                self.errors += 1
                continue
            self.fetch_ms.append((t1 - t0) * 1000)
            if at is not None:  # not the 5-second refresh
                self.update_ms.append(t1 * 1000 - at)


def webdriver(base, method, path, body=None):
    req = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"{}").get("value")


RECORDER = """
window.__wb = [];
let pending = null;
const main = document.getElementById('main');
new MutationObserver(() => {
  if (pending !== null) { window.__wb.push(Date.now() - pending); pending = null; }
}).observe(main, { childList: true });
const feed = new EventSource('/api/v1/events');
feed.addEventListener('acd', (e) => {
  if (pending === null) { try { pending = JSON.parse(e.data).at || Date.now(); } catch (_) {} }
});
return true;
"""


def chromium(driver, admin, user, password, seconds):
    caps = {
        "capabilities": {
            "alwaysMatch": {
                "browserName": "chrome",
                "acceptInsecureCerts": True,
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": ["--headless", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage"],
                },
            }
        }
    }
    session = webdriver(driver, "POST", "/session", caps)["sessionId"]
    s = "/session/" + session
    try:
        webdriver(driver, "POST", s + "/url", {"url": admin + "/ui/login"})
        # The login form posts to the session API from the page's own script.
        def field(css):
            el = webdriver(driver, "POST", s + "/element", {"using": "css selector", "value": css})
            return list(el.values())[0]
        webdriver(driver, "POST", s + "/element/" + field("#user") + "/value", {"text": user})
        webdriver(driver, "POST", s + "/element/" + field("#password") + "/value", {"text": password})
        webdriver(driver, "POST", s + "/element/" + field("form button[type=submit]") + "/click", {})
        deadline = time.time() + 20
        while "/ui/wallboard" not in webdriver(driver, "GET", s + "/url") and time.time() < deadline:
            time.sleep(0.2)
        webdriver(driver, "POST", s + "/url", {"url": admin + "/ui/wallboard"})
        webdriver(driver, "POST", s + "/execute/sync", {"script": RECORDER, "args": []})
        time.sleep(seconds)
        return webdriver(driver, "POST", s + "/execute/sync", {"script": "return window.__wb;", "args": []}) or []
    finally:
        webdriver(driver, "DELETE", s)


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))], 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--admin", required=True, help="https://127.0.0.1:PORT")
    ap.add_argument("--key", required=True)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--chromium", help="chromedriver URL, e.g. http://127.0.0.1:9515")
    ap.add_argument("--user")
    ap.add_argument("--password")
    a = ap.parse_args()
    host, port = a.admin.split("//")[1].split(":")
    until = time.time() + a.seconds
    clients = [Client(host, int(port), a.key, until) for _ in range(a.clients)]
    for c in clients:
        c.start()
    browser = []
    if a.chromium:
        try:
            browser = chromium(a.chromium, a.admin, a.user, a.password, a.seconds)
        except Exception as e:  # report, do not hide: the figures say the browser had none
            print(json.dumps({"chromium_error": str(e)}), flush=True)
    for c in clients:
        c.join(timeout=a.seconds + 30)
    fetch = [x for c in clients for x in c.fetch_ms]
    update = [x for c in clients for x in c.update_ms]
    print(json.dumps({
        "clients": a.clients,
        "seconds": a.seconds,
        "events_per_client": round(sum(c.events for c in clients) / max(1, a.clients), 1),
        "fetches": len(fetch),
        "errors": sum(c.errors for c in clients),
        "fetch_ms": {"p50": pct(fetch, 50), "p99": pct(fetch, 99), "max": pct(fetch, 100)},
        "update_ms": {"p50": pct(update, 50), "p99": pct(update, 99), "max": pct(update, 100)},
        "chromium_updates": len(browser),
        "chromium_update_ms": {"p50": pct(browser, 50), "p99": pct(browser, 99), "max": pct(browser, 100)},
    }))


if __name__ == "__main__":
    main()
