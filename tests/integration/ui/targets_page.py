#!/usr/bin/env python3
"""The cluster-wide targets page in a real browser (issue 9).

Starts a 3-node Starling cluster on 127.0.0.1 (free ports), two clustered
scrape components (job "cl": the three nodes' own /metrics plus three dead
ports; job "other": two more of the nodes' /metrics), then loads node 1's
/targets and / in headless Debian chromium and checks the DOM after scripts
ran: every target row carries its owner's view (health up/down, a last
scrape, never "unknown"), rows sorted by job then instance, nodes sorted by
name, filters (unhealthy only, job, free text, component) narrow the rows,
every control is a plain form control or a link with an href, no console
errors. A screenshot is kept as a CI artifact (argv[3]). Then a frozen peer
(SIGSTOP) must show as "no answer" within the fetch bound, never stall the
page.

Usage: targets_page.py STARLING PLUGINS_DIR ARTIFACT_DIR
Exit 77 when chromium is not installed.
"""
import html.parser
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

STARLING, PLUGINS, ARTIFACTS = sys.argv[1], sys.argv[2], sys.argv[3]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM:
    print("SKIP: chromium is not installed")
    sys.exit(77)

work = tempfile.mkdtemp(prefix="starling-ui-")
procs = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    try:  # kept with the screenshot for CI
        os.makedirs(ARTIFACTS, exist_ok=True)
        with open(os.path.join(ARTIFACTS, "failure.txt"), "w") as f:
            f.write(msg + "\n")
    except OSError:
        pass
    if "v" in globals().get("last_view", {}):
        print(json.dumps(last_view["v"])[:4000], file=sys.stderr)
    for i in range(1, 4):
        log = os.path.join(work, "n%d.log" % i)
        if os.path.exists(log):
            print("--- n%d log (tail) ---" % i, file=sys.stderr)
            print("".join(open(log).readlines()[-15:]), file=sys.stderr)
    cleanup()
    sys.exit(1)


def cleanup():
    for p in procs:
        try:
            os.kill(p.pid, signal.SIGCONT)
            p.kill()
            p.wait(timeout=5)
        except Exception:
            pass
    shutil.rmtree(work, ignore_errors=True)


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_for(what, secs, fn):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        try:
            if fn():
                return
        except Exception:
            pass
        time.sleep(0.2)
    fail("timed out after %ds waiting for: %s" % (secs, what))


http = [free_port() for _ in range(3)]
gossip = [free_port() for _ in range(3)]
dead = [free_port() for _ in range(3)]
join = ", ".join('"127.0.0.1:%d"' % g for g in gossip)
cl_targets = ", ".join('{ __address__ = "127.0.0.1:%d"; }' % p for p in http + dead)
other_targets = ", ".join('{ __address__ = "127.0.0.1:%d"; }' % p for p in http[:2])
for i in range(3):
    cfg = os.path.join(work, "n%d.cfg" % (i + 1))
    with open(cfg, "w") as f:
        f.write("""
state_dir = "%(work)s/state%(n)d";
cluster = { enabled = true; node_name = "node-%(n)d"; bind = "127.0.0.1:%(g)d";
            join = [ %(join)s ]; profile = "local"; };
components = (
  { type = "prometheus.scrape"; name = "cl"; job_name = "cl";
    targets = ( %(cl)s );
    scrape_interval = "1s"; scrape_timeout = "500ms";
    clustering = { enabled = true; };
    forward_to = [ "local.file_sink.out" ]; },
  { type = "prometheus.scrape"; name = "other"; job_name = "other";
    targets = ( %(other)s );
    scrape_interval = "1s"; scrape_timeout = "500ms";
    clustering = { enabled = true; };
    forward_to = [ "local.file_sink.out" ]; },
  { type = "local.file_sink"; name = "out"; path = "out.om"; }
);
""" % {"work": work, "n": i + 1, "g": gossip[i], "join": join, "cl": cl_targets,
       "other": other_targets})
    log = open(os.path.join(work, "n%d.log" % (i + 1)), "w")
    procs.append(subprocess.Popen(
        [STARLING, "run", "--config", cfg, "--plugins-dir", PLUGINS,
         "--server.http.listen-addr", "127.0.0.1:%d" % http[i]],
        stdout=log, stderr=subprocess.STDOUT))

base = "http://127.0.0.1:%d" % http[0]


def participants(port):
    peers = json.loads(get("http://127.0.0.1:%d/api/v0/cluster/peers" % port))
    return sum(1 for p in peers if p["state"] == "participant" and p.get("http"))


wait_for("3 participants advertising their HTTP address", 40,
         lambda: all(participants(p) == 3 for p in http))


last_view = {}


def all_owner_views():
    v = json.loads(get(base + "/api/v0/targets"))
    last_view["v"] = v
    rows = v["targets"]
    # (ownership is by rendezvous hash of the random ports: which peers own
    # targets varies; at least one does, all but surely)
    return (len(rows) == 8 and all(r["view"] in ("local", "owner") for r in rows) and
            all(r["last_scrape_ms"] > 0 and r["health"] in ("up", "down") for r in rows) and
            any(r["owner"] != "node-1" for r in rows))


def handovers_due():
    # Joins are announced ahead (cluster.handover_delay): until every
    # announced owns_from has passed, plus a scrape interval, a target can
    # still move to an owner that has not scraped it yet.
    peers = json.loads(get(base + "/api/v0/cluster/peers"))
    due = max([p.get("owns_from", 0) for p in peers] + [0])
    return time.time() * 1000 > due + 1500


wait_for("announced hand-overs due", 40, handovers_due)

try:
    wait_for("every target scraped by its owner, its view on node-1", 40, all_owner_views)
except SystemExit:
    print(json.dumps(last_view.get("v"), indent=1)[:6000], file=sys.stderr)
    raise


class Dom(html.parser.HTMLParser):
    """Tables by id -> rows of cell texts; links; form controls."""

    def __init__(self):
        super().__init__()
        self.tables, self.links, self.controls = {}, [], []
        self.table = self.row = self.cell = None
        self.row_attrs = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.table = a.get("id")
            self.tables[self.table] = []
            self.row_attrs = []
        elif tag == "tr" and self.table:
            self.row = []
            self.row_attrs.append(a)
        elif tag in ("td", "th") and self.row is not None:
            self.cell = ""
        elif tag == "a":
            self.links.append(a)
        elif tag in ("input", "select", "button"):
            self.controls.append((tag, a))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append(self.cell.strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.tables[self.table].append(self.row)
            self.row = None
        elif tag == "table":
            self.table = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def browse(path, screenshot=None):
    """DOM after scripts ran, and console errors, from headless chromium."""
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=" +
            os.path.join(work, "chromium"), "--enable-logging=stderr", "--v=0",
            "--virtual-time-budget=3000", "--window-size=1400,1100"]
    if screenshot:
        args.append("--screenshot=" + screenshot)
    else:
        args.append("--dump-dom")
    r = subprocess.run(args + [base + path], capture_output=True, text=True, timeout=90)
    console = [l for l in r.stderr.splitlines() if "CONSOLE" in l]
    errors = [l for l in console if "Uncaught" in l or "Error" in l or ":ERROR:" in l]
    if errors:
        fail("console errors on %s: %s" % (path, errors))
    return r.stdout


def targets_dom(path):
    d = Dom()
    d.feed(browse(path))
    if "targets" not in d.tables:
        fail("no targets table on %s" % path)
    return d, d.tables["targets"][1:]  # without the header row


COLS = ["job", "instance", "component", "owner", "last scrape", "duration", "health",
        "last error", "labels"]

d, rows = targets_dom("/targets")
if d.tables["targets"][0] != COLS:
    fail("targets header %r" % d.tables["targets"][0])
if len(rows) != 8:
    fail("want 8 target rows, got %d: %r" % (len(rows), rows))
for r in rows:
    if r[6] not in ("up", "down"):
        fail("row without its owner's health: %r" % r)
    if r[3] not in ("node-1", "node-2", "node-3"):
        fail("row without an owner: %r" % r)
    if not r[4].endswith("s ago"):
        fail("last scrape not shown as 'N s ago': %r" % r)
down = [r for r in rows if r[6] == "down"]
if sorted(r[1] for r in down) != sorted("127.0.0.1:%d" % p for p in dead):
    fail("down rows are not the dead ports: %r" % down)
if [(r[0], r[1]) for r in rows] != sorted((r[0], r[1]) for r in rows):
    fail("targets not sorted by job, instance: %r" % [(r[0], r[1]) for r in rows])
nodes = [r[0] for r in d.tables["nodes"][1:]]
if nodes != ["node-1", "node-2", "node-3"]:
    fail("nodes not sorted by name: %r" % nodes)
answers = {r[0]: r[4] for r in d.tables["nodes"][1:]}
owners = {r[3] for r in rows}
for n in ("node-2", "node-3"):
    want = "ok" if n in owners else "not asked (owns no listed target)"
    if answers[n] != want:
        fail("peer answers: %r (owners %r)" % (answers, owners))
if answers["node-1"] != "this node":
    fail("peer answers: %r" % answers)
peer_owner = sorted(o for o in owners if o != "node-1")[0]
comp_links = [a["href"] for a in d.links if a.get("href", "").startswith("/targets?component=")]
for c in ("prometheus.scrape.cl", "prometheus.scrape.other"):
    if "/targets?component=" + c not in comp_links:
        fail("no shareable link for component %s" % c)
names = {a.get("name") for t, a in d.controls}
if not {"component", "job", "q", "unhealthy"} <= names:
    fail("filter controls missing: %r" % names)
# The component's message says how many of the targets this node scrapes
# are down ("1/3 targets down").
comps = {r[0]: r for r in d.tables["components"][1:]}
mine = [r for r in rows if r[2] == "prometheus.scrape.cl" and r[3] == "node-1"]
n_down = sum(1 for r in mine if r[6] == "down")
want = "%d/%d targets down" % (n_down, len(mine)) if n_down else ""
if comps["prometheus.scrape.cl"][3] != want or \
        comps["prometheus.scrape.cl"][2] != ("unhealthy" if n_down else "healthy"):
    fail("scraper health/message %r, want %r" % (comps["prometheus.scrape.cl"], want))
print("ok: /targets on node-1 shows all 8 targets with their owners' views, sorted")

_, rows = targets_dom("/targets?unhealthy=1")
if len(rows) != 3 or any(r[6] != "down" for r in rows):
    fail("unhealthy filter: %r" % rows)
_, rows = targets_dom("/targets?job=other")
if len(rows) != 2 or any(r[0] != "other" for r in rows):
    fail("job filter: %r" % rows)
_, rows = targets_dom("/targets?q=%d" % dead[1])
if len(rows) != 1 or rows[0][1] != "127.0.0.1:%d" % dead[1]:
    fail("text filter: %r" % rows)
_, rows = targets_dom("/targets?component=prometheus.scrape.other&unhealthy=1")
if rows:
    fail("component + unhealthy filter: %r" % rows)
print("ok: filters (unhealthy, job, text, component) as shareable URLs")

# The live page: components with links, peers sorted, no console errors.
d = Dom()
d.feed(browse("/"))
peers = [r[0] for r in d.tables.get(None, [])] if None in d.tables else []
links = [a.get("href") for a in d.links]
if "/targets?component=prometheus.scrape.cl" not in links or "/targets" not in links:
    fail("live page lacks href links to the targets page: %r" % links)
print("ok: live page links every component to its targets URL, no console errors")

os.makedirs(ARTIFACTS, exist_ok=True)
shot = os.path.join(ARTIFACTS, "targets_page.png")
browse("/targets", screenshot=shot)
if not os.path.exists(shot) or os.path.getsize(shot) < 10000:
    fail("no screenshot at %s" % shot)
print("ok: screenshot kept at %s" % shot)

# A frozen peer: its rows say "no answer", the page still comes within the bound.
frozen_proc = procs[int(peer_owner[-1]) - 1]
os.kill(frozen_proc.pid, signal.SIGSTOP)
wait_for("the peer stopped", 5,
         lambda: "T (stopped)" in open("/proc/%d/status" % frozen_proc.pid).read())
t0 = time.monotonic()
body = get(base + "/targets", timeout=10)
took = time.monotonic() - t0
os.kill(frozen_proc.pid, signal.SIGCONT)
if took > 4.0:
    fail("page took %.1f s with a frozen peer" % took)
d = Dom()
d.feed(body)
frozen = [r for r in d.tables["targets"][1:] if r[3] == peer_owner]
if not frozen or any(r[6] != "no answer" for r in frozen):
    fail("frozen peer (%s) rows not shown as no answer after %.1f s: %r" % (peer_owner, took, frozen))
ans = {r[0]: r[4] for r in d.tables["nodes"][1:]}
if not ans[peer_owner].startswith("no answer"):
    fail("frozen peer not marked in the nodes table: %r" % ans)
m = get(base + "/metrics")
if 'starling_targets_view_fetches_total{result="timeout"} 0' in m:
    fail("the cut fetch was not counted")
print("ok: frozen peer shown as no answer after %.1f s (bound %.1f s), counted" % (took, 2.0))
cleanup()
