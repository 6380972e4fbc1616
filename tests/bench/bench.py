#!/usr/bin/env python3
"""acceptd's benchmark (issue 6): `make bench` runs this.

The figure of merit is server CPU time per request: user+sys of the server's
master and all its workers, read from /proc before and after each load run,
divided by the requests the load generator completed. Servers run side by
side on their own loopback ports and take turns (A B C A B C ...) for
several rounds; medians with min and max are reported.

Output: a table on stdout, tests/bench/results.md, tests/bench/results.svg.
BENCH_QUICK=1: one short round of everything (a smoke test, noisy numbers).
BENCH_BASE_PORT=N: use loopback ports N..N+800 (default 18100).
"""
import argparse
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
ROUNDS = 1 if QUICK else 5
DURATION = 1 if QUICK else 2
CONC = 32
ECHO_TRIPS = 10          # round trips per echo connection
ECHO_SIZE = 64
TICK = os.sysconf("SC_CLK_TCK")
BASE_PORT = int(os.environ.get("BENCH_BASE_PORT", "18100"))  # ports BASE_PORT..+800


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

def tree(pid):
    """pid and its descendants (the server's master and workers)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu(pid):
    """(user+sys seconds from /proc/PID/stat incl. reaped children,
    on-CPU seconds from /proc/PID/schedstat) summed over the tree."""
    ticks, ns = 0, 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                s = f.read()
            fields = s[s.rindex(")") + 2:].split()
            ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/schedstat") as f:
                    ns += int(f.read().split()[0])
        except OSError:
            pass
    return ticks / TICK, ns / 1e9


def wait_port(port, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.005)
    return False


class Server:
    def __init__(self, name, kind, mode, port, argv, tmp, pin=None, echo_port=None):
        self.name, self.kind, self.mode = name, kind, mode
        self.port, self.echo_port = port, echo_port
        self.argv = (["taskset", "-c", pin] if pin is not None else []) + argv
        self.log = open(os.path.join(tmp, f"{name}.log"), "w")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        for p in (self.port, self.echo_port):
            if p and not wait_port(p):
                raise SystemExit(f"bench: {self.name} did not come up (see its log)")
        time.sleep(0.1)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT if self.kind != "nginx" else signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                for p in reversed(tree(self.proc.pid)):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                self.proc.wait()
        self.log.close()


def acceptd_conf(tmp, name, workers, mode, port, echo_port, extra=""):
    path = os.path.join(tmp, f"{name}.conf")
    with open(path, "w") as f:
        f.write(f"""[daemon]
workers = {workers}
mode = {mode}
log_level = info
shutdown_timeout = 1s
{extra}
[listener web]
address = 127.0.0.1
port = {port}
handler = http

[listener echo]
address = 127.0.0.1
port = {echo_port}
handler = echo
""")
    return path


def nginx_conf(tmp, name, workers, mode, port):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "nginx.conf")
    with open(path, "w") as f:
        f.write(f"""daemon off;
master_process on;
worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 16384; accept_mutex off; }}
http {{
    access_log off;
    default_type text/plain;
    keepalive_requests 100000000;
    client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
    uwsgi_temp_path {d}; scgi_temp_path {d};
    server {{
        listen 127.0.0.1:{port}{' reuseport' if mode == 'reuseport' else ''};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
""")
    return ["nginx", "-p", d, "-c", path, "-e", os.path.join(d, "error.log")]


# ---------------------------------------------------------------- loads

def run_wrk(port, close, pin):
    threads = "1" if pin is not None else "2"
    argv = (["taskset", "-c", pin] if pin is not None else []) + \
        ["wrk", "-t", threads, "-c", str(CONC), "-d", f"{DURATION}s"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://127.0.0.1:{port}/")
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    m = re.search(r"(\d+) requests in", out)
    errs = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return int(m.group(1)), {"errors": (errs.group(1) if errs else "") +
                             (f" non2xx {non2xx.group(1)}" if non2xx else "")}


def run_load(binary, args, pin=None):
    argv = (["taskset", "-c", pin] if pin is not None else []) + [binary] + args
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    kv = dict(x.split("=") for x in out.split()[:10] if "=" in x)
    return kv


def run_echo(binary, port, pin):
    kv = run_load(binary, ["-p", str(port), "-m", "echo", "-c", str(CONC), "-r", str(ECHO_TRIPS),
                           "-s", str(ECHO_SIZE), "-d", str(DURATION)], pin)
    return int(kv["trips"]), {"p50": float(kv["p50"]), "p99": float(kv["p99"]),
                              "errors": kv["errors"] if kv["errors"] != "0" else ""}


# ---------------------------------------------------------------- main runs

WORKLOADS = [("close", "new connection per request (Connection: close)"),
             ("keepalive", "keep-alive"),
             ("echo", f"echo: connect, {ECHO_TRIPS} x {ECHO_SIZE}-byte round trips, close")]
SETUPS = [("pinned", "server on CPU 0 with 1 worker, load on CPU 1"),
          ("2w", "2 workers, server and load unpinned")]


def servers_for(setup, args, tmp, have_nginx):
    pin = "0" if setup == "pinned" else None
    workers = 1 if setup == "pinned" else 2
    port = BASE_PORT + (0 if setup == "pinned" else 50)
    out = []
    for mode in ("reuseport", "shared"):
        conf = acceptd_conf(tmp, f"acceptd-{mode}-{setup}", workers, mode, port, port + 1)
        out.append(Server(f"acceptd {mode}", "acceptd", mode, port,
                          [args.acceptd, "-f", "-c", conf], tmp, pin, echo_port=port + 1))
        port += 2
    for mode in ("reuseport", "shared"):
        r = ["-r"] if mode == "reuseport" else []
        s = Server(f"floor {mode}", "floor", mode, port,
                   [os.path.join(args.bin, "floor"), "-w", str(workers), "-p", str(port)] + r,
                   tmp, pin, echo_port=port + 1)
        s.echo_argv = [os.path.join(args.bin, "floor"), "-e", "-w", str(workers),
                       "-p", str(port + 1)] + r
        out.append(s)
        port += 2
    if have_nginx:
        for mode in ("reuseport", "shared"):
            out.append(Server(f"nginx {mode}", "nginx", mode, port,
                              nginx_conf(tmp, f"nginx-{mode}-{setup}", workers, mode, port),
                              tmp, pin))
            port += 2
    return out



def spread_start(server):
    """Halfway through a run, each worker's open sockets less those it had
    before: where the load's keep-alive connections fell."""
    ws = worker_pids(server.proc.pid)
    base = {w: sock_fds(w) for w in ws}
    out = []
    t = threading.Timer(DURATION / 2, lambda: out.append(sorted(sock_fds(w) - base[w]
                                                                for w in ws)))
    t.start()
    return t, out


def spread_end(spread):
    t, out = spread
    t.join()
    return out[0] if out else None


def main_runs(args, tmp, have_nginx, results):
    for setup, _ in SETUPS:
        pin_srv = "0" if setup == "pinned" else None
        pin_load = "1" if setup == "pinned" else None
        srv = servers_for(setup, args, tmp, have_nginx)
        # floor serves one protocol per process: its echo twin, own port
        echo_twins = {}
        for s in srv:
            if s.kind == "floor":
                t = Server(s.name + " echo", "floor", s.mode, s.echo_port, s.echo_argv, tmp,
                           pin_srv)
                s.echo_port = None
                echo_twins[s.name] = t
        everything = srv + list(echo_twins.values())
        try:
            for s in everything:
                s.start()
            for r in range(ROUNDS):
                for wl, _ in WORKLOADS:
                    for s in srv:
                        if wl == "echo" and s.kind == "nginx":
                            continue
                        target = echo_twins.get(s.name, s) if wl == "echo" else s
                        port = (target.echo_port or target.port) if wl == "echo" else s.port
                        pids0 = tree(target.proc.pid)
                        spread = spread_start(target) if (setup, wl) == ("2w", "keepalive") \
                            else None
                        c0 = cpu(target.proc.pid)
                        if wl == "echo":
                            n, extra = run_echo(os.path.join(args.bin, "load"), port, pin_load)
                        else:
                            n, extra = run_wrk(port, wl == "close", pin_load)
                        c1 = cpu(target.proc.pid)
                        if spread:
                            extra["split"] = spread_end(spread)
                        if tree(target.proc.pid) != pids0 or target.proc.poll() is not None:
                            # a worker was replaced (or the server died) under the
                            # load: signalled from outside? The sample is void.
                            log(f"  bench: {target.name}: processes changed during the run "
                                f"({pids0} -> {tree(target.proc.pid)}); sample dropped, "
                                f"see {target.log.name}")
                            if target.proc.poll() is not None:
                                raise SystemExit(f"bench: {target.name} died")
                            continue
                        stat_s, sched_s = c1[0] - c0[0], c1[1] - c0[1]
                        rec = results.setdefault((setup, wl, s.name), [])
                        rec.append(dict(n=n, stat=stat_s, sched=sched_s,
                                        us_stat=stat_s / n * 1e6, us=sched_s / n * 1e6,
                                        rps=n / DURATION, **extra))
                        log(f"  round {r + 1}/{ROUNDS} {setup:6} {wl:9} {s.name:18} "
                            f"{n:8d} req  {sched_s / n * 1e6:6.2f} us/req "
                            f"(stat {stat_s / n * 1e6:6.2f})"
                            + (f"  errors: {extra['errors']}" if extra.get("errors") else ""))
        finally:
            for s in everything:
                s.stop()


# ---------------------------------------------------------------- extras

def callgrind_self_by_object(path):
    """Self cost (Ir) per object file from a callgrind output file."""
    per, names = {}, {}
    ob, skip = None, False
    with open(path) as f:
        for line in f:
            if skip:
                skip = False
                continue
            if line.startswith("cob="):
                m = re.match(r"cob=\((\d+)\) (.*)", line.strip())
                if m:
                    names[m.group(1)] = m.group(2)
            elif line.startswith("ob="):
                m = re.match(r"ob=\((\d+)\)(?: (.*))?", line.strip())
                if m:
                    if m.group(2):
                        names[m.group(1)] = m.group(2)
                    ob = names.get(m.group(1))
                else:
                    ob = line[3:].strip()
            elif line.startswith("calls="):
                skip = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                parts = line.split()
                if len(parts) >= 2:
                    per[ob] = per.get(ob, 0) + int(parts[-1])
    return per


def callgrind_run(args, tmp, kind, wl, count):
    """Run the server under callgrind with one worker, serve `count`
    requests of workload wl, stop it; the worker's per-object self cost."""
    d = tempfile.mkdtemp(dir=tmp, prefix=f"cg-{kind}-{wl}-{count}-")
    port = BASE_PORT + 200
    if kind == "acceptd":
        conf = acceptd_conf(d, "cg", 1, "reuseport", port, port + 1)
        argv = [args.acceptd, "-f", "-c", conf]
    else:
        argv = [os.path.join(args.bin, "floor"), "-w", "1", "-p", str(port + (wl == "echo"))] + \
            (["-e"] if wl == "echo" else [])
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={d}/cg.%p"] + argv,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_port(port + (wl == "echo"), 30):
            raise SystemExit("bench: server under valgrind did not come up")
        time.sleep(0.3)
        load = os.path.join(args.bin, "load")
        if wl == "close":
            run_load(load, ["-p", str(port), "-m", "httpclose", "-c", "1", "-n", str(count)])
        elif wl == "keepalive":
            run_load(load, ["-p", str(port), "-m", "http", "-c", "1", "-n", "1", "-r", str(count)])
        else:
            run_load(load, ["-p", str(port + 1), "-m", "echo", "-c", "1", "-n", "1",
                            "-r", str(count), "-s", str(ECHO_SIZE)])
    finally:
        if kind == "acceptd":
            p.send_signal(signal.SIGTERM)
        else:
            for q in tree(p.pid)[1:]:
                os.kill(q, signal.SIGTERM)   # the worker: dumps at exit
            time.sleep(0.5)
            p.send_signal(signal.SIGTERM)
        p.wait(60)
    # cg.PID only: cg.conf (the config, in the same directory) is no output
    files = [os.path.join(d, f) for f in os.listdir(d) if f.startswith("cg.") and f[3:].isdigit()]
    worker = [f for f in files if not f.endswith(f".{p.pid}")]
    if not worker:
        raise SystemExit("bench: no callgrind output from the worker")
    return callgrind_self_by_object(worker[0]), worker[0]


def callgrind_all(args, tmp):
    """Marginal user-space instructions per request: (run of 3N - run of N) / 2N,
    so start-up and shutdown cancel out."""
    out = {}
    if not shutil.which("valgrind"):
        return None
    n = 200 if QUICK else 1000
    for kind in ("acceptd", "floor"):
        for wl, _ in WORKLOADS:
            a, _ = callgrind_run(args, tmp, kind, wl, n)
            b, _ = callgrind_run(args, tmp, kind, wl, 3 * n)
            per = {}
            for ob in set(a) | set(b):
                per[ob] = (b.get(ob, 0) - a.get(ob, 0)) / (2 * n)
            out[(kind, wl)] = dict(per=per)
            log(f"  callgrind {kind:7} {wl:9} {sum(per.values()):8.0f} Ir/req")
    return out


def classify(ob, acceptd_path):
    if ob is None:
        return "other"
    if os.path.realpath(ob) == os.path.realpath(acceptd_path) or ob.endswith("/floor"):
        return "own"
    if "libev" in ob:
        return "libev"
    if "libc" in ob:
        return "libc"
    return "other"


def worker_pids(pid):
    return [p for p in tree(pid) if p != pid]


def sock_fds(pid):
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    n += 1
            except OSError:
                pass
    except OSError:
        pass
    return n


def fairness(args, tmp):
    """Accepted connections per worker: a load of 16 concurrent echo clients
    makes 4000 connections, each does one round trip and stays open; then
    each worker's socket descriptors are counted (minus its listening ones).
    Exact and unperturbed: every accepted connection is still an open
    descriptor in the worker that accepted it."""
    out = {}
    total = 1000 if QUICK else 4000
    load = os.path.join(args.bin, "load")
    for workers in (2, 8):
        for kind in ("acceptd", "floor"):
            for mode in ("reuseport", "shared"):
                port = BASE_PORT + 300
                if kind == "acceptd":
                    conf = acceptd_conf(tmp, f"fair-{workers}-{mode}", workers, mode, port + 1,
                                        port, "rlimit_nofile = 16384\n")
                    argv = [args.acceptd, "-f", "-c", conf]
                else:
                    argv = [os.path.join(args.bin, "floor"), "-e", "-w", str(workers), "-p",
                            str(port)] + (["-r"] if mode == "reuseport" else [])
                s = Server(f"fair-{kind}-{workers}-{mode}", kind, mode, port, argv, tmp)
                s.start()
                base = {p: sock_fds(p) for p in worker_pids(s.proc.pid)}
                h = subprocess.Popen([load, "-p", str(port), "-m", "echo", "-c", "16", "-H",
                                      "-n", str(total)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
                h.stdout.readline()
                h.stdout.readline()
                counts = sorted(sock_fds(p) - base[p] for p in base)
                h.stdin.close()
                h.wait()
                s.stop()
                fair = sum(counts) / len(counts)
                dev = max(abs(c - fair) for c in counts) / fair * 100 if fair else 0
                out[(workers, kind, mode)] = dict(counts=counts, dev=dev)
                log(f"  fairness {workers} workers {kind:7} {mode:9} {counts} max dev {dev:.1f}%")
    return out


EXIT_RE = re.compile(r"worker (\d+): (\d+) connections accepted; accept\(\) said EAGAIN (\d+) "
                     r"times, (\d+) of them at once")


def wakeups(pids):
    """Voluntary context switches of these processes: one per wake-up."""
    n = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        n += int(line.split()[1])
        except OSError:
            pass
    return n


def herd(args, tmp):
    """The thundering herd at light load: 8 workers, shared and reuseport,
    N sequential daytime connections (connect, read the line, closed by
    the server: one at a time, every worker idle, where a herd is worst;
    the worker that accepts needs one wake-up). Counted: the workers'
    wake-ups (voluntary context switches, from /proc), and from their exit
    lines after TERM accept() calls that said EAGAIN and batches whose
    first accept() did (a wake-up for nothing that reached user space)."""
    n = 500 if QUICK else 2000
    out = {}
    for mode in ("shared", "reuseport"):
        port = BASE_PORT + 700
        conf = os.path.join(tmp, f"herd-{mode}.conf")
        with open(conf, "w") as f:
            f.write(f"[daemon]\nworkers = 8\nmode = {mode}\nshutdown_timeout = 1s\n\n"
                    f"[listener d]\naddress = 127.0.0.1\nport = {port}\nhandler = daytime\n")
        s = Server(f"herd-{mode}", "acceptd", mode, port, [args.acceptd, "-f", "-c", conf], tmp)
        s.start()
        for _ in range(64):     # each worker takes the socket over at its first wake-up
            socket.create_connection(("127.0.0.1", port), 2).close()
        time.sleep(0.1)
        workers = worker_pids(s.proc.pid)
        w0, c0 = wakeups(workers), cpu(s.proc.pid)
        for _ in range(n):
            c = socket.create_connection(("127.0.0.1", port), 2)
            got = b""
            while True:
                b = c.recv(256)
                if not b:
                    break
                got += b
            c.close()
            if not got:
                raise SystemExit(f"bench: herd {mode}: no daytime line")
        time.sleep(0.05)
        w1, c1 = wakeups(workers), cpu(s.proc.pid)
        s.proc.send_signal(signal.SIGTERM)
        s.proc.wait(10)
        s.log.close()
        with open(s.log.name) as f:
            rows = [tuple(map(int, m.groups())) for m in EXIT_RE.finditer(f.read())]
        acc = sum(r[1] for r in rows)
        out[mode] = dict(conns=n, workers=len(rows), accepted=acc,
                         wake=(w1 - w0) / n, eagain=sum(r[2] for r in rows) / max(acc, 1),
                         empty=sum(r[3] for r in rows) / max(acc, 1),
                         per=sorted(r[1] for r in rows), us=(c1[1] - c0[1]) / n * 1e6)
        v = out[mode]
        log(f"  herd {mode:9} {len(rows)} workers, {acc} accepted {v['per']}: "
            f"{v['wake']:.2f} wake-ups, {v['eagain']:.2f} EAGAIN, {v['empty']:.3f} empty "
            f"batches per connection; {v['us']:.1f} us CPU per connection")
    return out


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def idle_memory(args, tmp):
    """RSS growth of the worker over 10,000 idle echo connections (each made
    one round trip, then idles), divided."""
    n = 2000 if QUICK else 10000
    out = {}
    load = os.path.join(args.bin, "load")
    for kind in ("acceptd", "floor"):
        port = BASE_PORT + 400
        if kind == "acceptd":
            conf = acceptd_conf(tmp, "idle", 1, "reuseport", port + 1, port,
                                "rlimit_nofile = 16384\n")
            argv = [args.acceptd, "-f", "-c", conf]
        else:
            argv = [os.path.join(args.bin, "floor"), "-e", "-w", "1", "-p", str(port)]
        s = Server(f"idle-{kind}", kind, "reuseport", port, argv, tmp)
        s.start()
        w = worker_pids(s.proc.pid)[0]
        before = rss_kb(w)
        h = subprocess.Popen([load, "-p", str(port), "-m", "echo", "-c", "64", "-H", "-n", str(n)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        first = h.stdout.readline()
        h.stdout.readline()
        held = int(re.search(r"conns=(\d+)", first).group(1))
        after = rss_kb(w)
        h.stdin.close()
        h.wait()
        s.stop()
        out[kind] = dict(held=held, before=before, after=after,
                         per=(after - before) * 1024 / max(held, 1))
        log(f"  idle {kind:7} {held} conns: RSS {before} -> {after} kB, "
            f"{out[kind]['per']:.0f} B/conn")
    return out


def startup(args, tmp):
    """exec to "master ready" (its log line, read from a pipe) and to the
    first successful connect; 2 workers, 4 listeners."""
    runs = 3 if QUICK else 10
    ready, conn = [], []
    port = BASE_PORT + 500
    path = os.path.join(tmp, "startup.conf")
    with open(path, "w") as f:
        f.write("[daemon]\nworkers = 2\nmode = reuseport\n")
        for i in range(4):
            f.write(f"[listener l{i}]\naddress = 127.0.0.1\nport = {port + i}\nhandler = echo\n")
    for _ in range(runs):
        t0 = time.monotonic()
        p = subprocess.Popen([args.acceptd, "-f", "-c", path], stderr=subprocess.PIPE, text=True)
        t_conn = None
        while True:
            if t_conn is None:
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    t_conn = time.monotonic()
                except OSError:
                    pass
            line = p.stderr.readline()
            if "master ready" in line:
                t_ready = time.monotonic()
                break
            if not line:
                raise SystemExit("bench: acceptd exited during start-up")
        while t_conn is None:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                t_conn = time.monotonic()
            except OSError:
                time.sleep(0.0002)
        p.send_signal(signal.SIGINT)
        p.wait()
        ready.append((t_ready - t0) * 1e3)
        conn.append((t_conn - t0) * 1e3)
    return dict(ready=ready, conn=conn)


def hup(args, tmp):
    """kill -HUP to a new worker having accepted: 2 workers, reuseport and
    shared. After the signal, the bench connects (echo, one round trip, held
    open) every 0.5 ms and checks whether any worker the master forked after
    the HUP holds an accepted connection."""
    runs = 2 if QUICK else 5
    out = {}
    for mode in ("reuseport", "shared"):
        port = BASE_PORT + 600
        conf = acceptd_conf(tmp, f"hup-{mode}", 2, mode, port + 1, port)
        s = Server(f"hup-{mode}", "acceptd", mode, port, [args.acceptd, "-f", "-c", conf], tmp)
        s.start()
        times = []
        for _ in range(runs):
            old = set(worker_pids(s.proc.pid))
            held = []
            t0 = time.monotonic()
            os.kill(s.proc.pid, signal.SIGHUP)
            done = None
            while time.monotonic() - t0 < 5:
                try:
                    c = socket.create_connection(("127.0.0.1", port), 1)
                    c.sendall(b"x")
                    c.recv(1)
                    held.append(c)
                except OSError:
                    pass
                new = [p for p in worker_pids(s.proc.pid) if p not in old]
                if any(sock_fds(p) > 2 for p in new):
                    done = time.monotonic()
                    break
                time.sleep(0.0005)
            for c in held:
                c.close()
            times.append((done - t0) * 1e3 if done else float("nan"))
            time.sleep(1.5)   # the old generation drains and goes
        s.stop()
        out[mode] = times
        log(f"  HUP {mode}: {['%.1f' % t for t in times]} ms")
    return out


# ---------------------------------------------------------------- report

def med(xs):
    return statistics.median(xs) if xs else float("nan")


def summarize(results):
    rows = {}
    for (setup, wl, name), recs in results.items():
        us = [r["us"] for r in recs]
        rows[(setup, wl, name)] = dict(
            med=med(us), min=min(us), max=max(us), rps=med([r["rps"] for r in recs]),
            stat=med([r["us_stat"] for r in recs]),
            p50=med([r.get("p50", float("nan")) for r in recs]),
            p99=med([r.get("p99", float("nan")) for r in recs]),
            errors=" ".join(sorted({r["errors"] for r in recs if r.get("errors")})))
    return rows


def ratio(rows, key, other):
    a, b = rows.get(key), rows.get(other)
    if not a or not b or not b["med"]:
        return None
    return a["med"] / b["med"]


def fmt_ratio(x):
    return "-" if x is None else f"{x:.3f}"


def table(rows, have_nginx):
    lines = []
    hdr = ("| set-up | workload | server | CPU us/req median [min-max] | stat us/req | "
           "x floor | x nginx | req/s | p50/p99 us |")
    lines.append(hdr)
    lines.append("|" + "---|" * 9)
    for setup, _ in SETUPS:
        for wl, _ in WORKLOADS:
            for (s2, w2, name), r in rows.items():
                if (s2, w2) != (setup, wl):
                    continue
                mode = name.split()[-1]
                kind = name.split()[0]
                xf = ratio(rows, (setup, wl, name), (setup, wl, f"floor {mode}")) \
                    if kind != "floor" else None
                xn = ratio(rows, (setup, wl, name), (setup, wl, f"nginx {mode}")) \
                    if kind != "nginx" and have_nginx else None
                lat = f"{r['p50']:.0f}/{r['p99']:.0f}" if r["p50"] == r["p50"] else ""
                err = f" (errors: {r['errors']})" if r["errors"] else ""
                lines.append(f"| {setup} | {wl} | {name}{err} | {r['med']:.2f} "
                             f"[{r['min']:.2f}-{r['max']:.2f}] | {r['stat']:.2f} | "
                             f"{fmt_ratio(xf)} | {fmt_ratio(xn)} | {r['rps']:.0f} | {lat} |")
    return lines


COLORS = {"acceptd reuseport": "#1f77b4", "acceptd shared": "#6baed6",
          "floor reuseport": "#555555", "floor shared": "#aaaaaa",
          "nginx reuseport": "#2ca02c", "nginx shared": "#98df8a"}


def svg(rows, path, title):
    groups = [(s, w) for s, _ in SETUPS for w, _ in WORKLOADS]
    names = [n for n in COLORS if any(k[2] == n for k in rows)]
    W, H, L, B, T = 900, 420, 60, 70, 40
    vmax = max([r["max"] for r in rows.values()] + [1e-9]) * 1.1
    gw = (W - L - 10) / len(groups)
    bw = gw * 0.8 / max(len(names), 1)
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'font-family="sans-serif" font-size="11">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14">{title}</text>']
    ph = H - B - T
    step = 10 ** (len(str(int(vmax))) - 1) if vmax >= 1 else 0.5
    v = 0.0
    while v <= vmax:
        y = T + ph - v / vmax * ph
        o.append(f'<line x1="{L}" x2="{W - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{L - 4}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
        v += step
    o.append(f'<text x="14" y="{T + ph / 2}" transform="rotate(-90 14 {T + ph / 2})" '
             f'text-anchor="middle">server CPU us per request (median, min-max)</text>')
    for gi, (s, w) in enumerate(groups):
        x0 = L + gi * gw + gw * 0.1
        for ni, n in enumerate(names):
            r = rows.get((s, w, n))
            if not r:
                continue
            x = x0 + ni * bw
            h = r["med"] / vmax * ph
            o.append(f'<rect x="{x:.1f}" y="{T + ph - h:.1f}" width="{bw * 0.9:.1f}" '
                     f'height="{h:.1f}" fill="{COLORS[n]}"><title>{n} {s} {w}: '
                     f'{r["med"]:.2f} us</title></rect>')
            y1, y2 = T + ph - r["min"] / vmax * ph, T + ph - r["max"] / vmax * ph
            xc = x + bw * 0.45
            o.append(f'<line x1="{xc:.1f}" x2="{xc:.1f}" y1="{y1:.1f}" y2="{y2:.1f}" '
                     f'stroke="black"/>')
        o.append(f'<text x="{L + gi * gw + gw / 2:.1f}" y="{H - B + 16}" '
                 f'text-anchor="middle">{w}</text>')
        o.append(f'<text x="{L + gi * gw + gw / 2:.1f}" y="{H - B + 30}" '
                 f'text-anchor="middle" fill="#666">{s}</text>')
    for ni, n in enumerate(names):
        x = L + ni * 140
        o.append(f'<rect x="{x}" y="{H - 22}" width="12" height="12" fill="{COLORS[n]}"/>')
        o.append(f'<text x="{x + 16}" y="{H - 12}">{n}</text>')
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {model}, Linux {platform.release()}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--acceptd", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--only", default="", help="comma list: main,callgrind,fair,herd,idle,startup,hup")
    args = ap.parse_args()
    args.acceptd = os.path.abspath(args.acceptd)
    args.bin = os.path.abspath(args.bin)
    only = set(args.only.split(",")) if args.only else \
        {"main", "callgrind", "fair", "herd", "idle", "startup", "hup"}
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"bench: {tool} is missing: apt-get install wrk util-linux")
    have_nginx = shutil.which("nginx") is not None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 32768), hard))
    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="acceptd-bench-")
    log(f"bench: {'quick' if QUICK else 'full'} run, {ROUNDS} rounds x {DURATION}s, logs in {tmp}")
    if not have_nginx:
        log("bench: nginx not installed, comparing with the floor only "
            "(apt-get install nginx-light, or nginx, to add it)")
    results, cg, fair, hd, idle, st, hp = {}, None, None, None, None, None, None
    if "main" in only:
        main_runs(args, tmp, have_nginx, results)
    if "callgrind" in only:
        cg = callgrind_all(args, tmp)
    if "fair" in only:
        fair = fairness(args, tmp)
    if "herd" in only:
        hd = herd(args, tmp)
    if "idle" in only:
        idle = idle_memory(args, tmp)
    if "startup" in only:
        st = startup(args, tmp)
    if "hup" in only:
        hp = hup(args, tmp)
    elapsed = time.monotonic() - t_start
    rows = summarize(results)

    md = ["# acceptd benchmark results", "",
          f"Regenerated by `make bench`{' (BENCH_QUICK=1: one short round, noisy)' if QUICK else ''} "
          f"on {time.strftime('%Y-%m-%d')}; machine: {machine()}; "
          f"{ROUNDS} interleaved rounds x {DURATION:g} s per server and workload; "
          f"whole run {elapsed:.0f} s.", "",
          "CPU us/req: on-CPU time of the server's master and workers "
          "(/proc/PID/task/*/schedstat, nanoseconds; the kernel's user+sys) "
          "before and after the run, divided by the requests the load completed. "
          "`stat us/req` is the same from /proc/PID/stat utime+stime+cutime+cstime "
          f"(clock ticks of {1000 / TICK:g} ms: coarser, a cross-check). "
          "x floor / x nginx: the median's ratio to the same mode's floor / nginx. "
          f"Load: wrk, {CONC} connections (HTTP); tests/bench/load.c, {CONC} connections "
          "(echo; p50/p99 is its round-trip latency).", ""]
    for setup, d in SETUPS:
        md.append(f"- {setup}: {d}")
    for wl, d in WORKLOADS:
        md.append(f"- {wl}: {d}")
    md.append("")
    if not have_nginx:
        md += ["nginx was not installed: `apt-get install nginx` adds it to the comparison.", ""]
    tbl = table(rows, have_nginx)
    md += tbl + [""]
    if cg:
        md += ["## User-space instructions per request (callgrind)", "",
               "One worker under valgrind --tool=callgrind; the marginal cost "
               "(a run of 3N requests minus a run of N, divided by 2N; N = "
               f"{200 if QUICK else 1000}), so start-up and exit cancel out. "
               "Deterministic up to how reads and accepts batch. One client "
               "connection at a time.", "",
               "| server | workload | own code | libev | libc | other | total |",
               "|---|---|---|---|---|---|---|"]
        for (kind, wl), v in cg.items():
            agg = {}
            for ob, x in v["per"].items():
                c = classify(ob, args.acceptd)
                agg[c] = agg.get(c, 0) + x
            md.append(f"| {kind} | {wl} | {agg.get('own', 0):.0f} | {agg.get('libev', 0):.0f} | "
                      f"{agg.get('libc', 0):.0f} | {agg.get('other', 0):.0f} | "
                      f"{sum(agg.values()):.0f} |")
        md.append("")
    if fair:
        md += ["## Fairness: connections accepted per worker", "",
               "16 concurrent echo clients make "
               f"{1000 if QUICK else 4000} connections, one round trip each, and keep "
               "them open; then each worker's socket descriptors are counted "
               "(less its listening ones): every connection a worker accepted is "
               "still open there. Max dev: the largest worker's distance from an "
               "even share.", "",
               "| workers | server | mode | per worker | max dev |", "|---|---|---|---|---|"]
        for (w, kind, mode), v in fair.items():
            md.append(f"| {w} | {kind} | {mode} | {' '.join(map(str, v['counts']))} | "
                      f"{v['dev']:.1f}% |")
        md.append("")
    spreads = [(k, recs) for k, recs in sorted(results.items()) if any("split" in r for r in recs)]
    if spreads:
        md += ["## 2 workers, keep-alive: where the connections fell", "",
               f"wrk opens its {CONC} connections at once and keeps them; halfway through "
               "each run every worker's open sockets (less those it had before) are "
               "counted. Two workers and two wrk threads share the two cores, and what a "
               "request costs moves with the split and the scheduling: these are the "
               "run's least steady figures.", "",
               "| server | per round: connections per worker, CPU us/req |", "|---|---|"]
        for (setup, wl, name), recs in spreads:
            md.append(f"| {name} | " + "; ".join(
                f"{'/'.join(map(str, r['split'] or []))} {r['us']:.2f}" for r in recs) + " |")
        md.append("")
    if hd:
        md += ["## Wake-ups per connection (the thundering herd)", "",
               f"8 workers, {hd['shared']['conns']} sequential daytime connections "
               "(one at a time: every worker idle; the worker that accepts writes a "
               "line and closes, one wake-up); after 64 warm-up connections. "
               "Wake-ups: the workers' voluntary context switches (/proc), per "
               "connection: 1 is ideal, each one more is a worker woken for nothing. "
               "From the workers' exit lines after TERM (all connections, warm-up "
               "included): accept() calls that said EAGAIN, and batches whose first "
               "accept() did, per connection. A worker woken for a connection "
               "another took mostly never reaches accept(): epoll_wait finds no "
               "event and sleeps on in the kernel, so only the wake-ups and the CPU "
               "show the herd. Shared mode puts the socket into each worker's epoll "
               "with EPOLLEXCLUSIVE. CPU: the server's on-CPU time per connection.", "",
               "| mode | accepted | per worker | wake-ups/conn | EAGAIN/conn | "
               "empty batches/conn | CPU us/conn |",
               "|---|---|---|---|---|---|---|"]
        for mode, v in hd.items():
            md.append(f"| {mode} | {v['accepted']} | {' '.join(map(str, v['per']))} | "
                      f"{v['wake']:.2f} | {v['eagain']:.2f} | {v['empty']:.3f} | {v['us']:.1f} |")
        md.append("")
    if idle:
        md += ["## Memory per idle echo connection", "",
               "Worker VmRSS before and after the connections (one round trip "
               "each, then idle), divided. User space only: kernel socket "
               "buffers are not in RSS.", "",
               "| server | connections | RSS before kB | after kB | bytes/conn |",
               "|---|---|---|---|---|"]
        for kind, v in idle.items():
            md.append(f"| {kind} | {v['held']} | {v['before']} | {v['after']} | {v['per']:.0f} |")
        md.append("")
    if st:
        md += ["## Start-up (2 workers, 4 listeners)", "",
               f"exec to the `master ready` log line: median {med(st['ready']):.1f} ms "
               f"[{min(st['ready']):.1f}-{max(st['ready']):.1f}]; exec to the first "
               f"successful connect: {med(st['conn']):.1f} ms "
               f"[{min(st['conn']):.1f}-{max(st['conn']):.1f}] ({len(st['ready'])} runs).", ""]
    if hp:
        md += ["## Reload", "",
               "kill -HUP to the first connection accepted by a worker of the new "
               "generation (2 workers; a connection every 0.5 ms, held, and the new "
               "workers' descriptors checked).", ""]
        for mode, ts in hp.items():
            md.append(f"- {mode}: median {med(ts):.1f} ms [{min(ts):.1f}-{max(ts):.1f}] "
                      f"({len(ts)} reloads)")
        md.append("")
    if rows:
        md += ["![server CPU per request](results.svg)", ""]
        svg(rows, os.path.join(args.out, "results.svg"),
            f"Server CPU time per request ({machine().split(',')[0]}, lower is better)")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
