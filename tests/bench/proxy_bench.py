#!/usr/bin/env python3
"""The proxy handler's splice measurement: SIZE bytes from a client through
one acceptd worker (handler proxy) to a sink, with splice = yes and no; the
worker's CPU time (utime + stime from /proc) per run, and the throughput.

    python3 tests/bench/proxy_bench.py [--acceptd build/acceptd] [--gib 1]
        [--runs 3] [--unix]

Client and sink are separate processes (so their CPU is not the worker's).
--unix: the upstream is a unix socket instead of 127.0.0.1 TCP."""
import argparse, os, re, socket, subprocess, sys, tempfile, time

CHUNK = 1 << 20


def cpu_ms(pid):
    with open(f"/proc/{pid}/stat") as f:
        st = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return (int(st[11]) + int(st[12])) * 1000 // tck


def sink(sock):
    """Child: accept one connection, discard until EOF."""
    c, _ = sock.accept()
    buf = bytearray(CHUNK)
    while c.recv_into(buf):
        pass
    c.close()
    os._exit(0)


def run(acceptd, size, use_splice, unix_up, tmp):
    if unix_up:
        path = os.path.join(tmp, f"sink-{time.monotonic_ns()}.sock")
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(path)
        upstream = f"unix:{path}"
    else:
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.bind(("127.0.0.1", 0))
        upstream = "127.0.0.1:%d" % ls.getsockname()[1]
    ls.listen(4)
    spid = os.fork()
    if spid == 0:
        sink(ls)
    ls.close()
    conf = os.path.join(tmp, "acceptd.conf")
    log = os.path.join(tmp, "log")
    with open(conf, "w") as f:
        f.write(f"[daemon]\nworkers = 1\nshutdown_timeout = 1s\n\n[listener p]\n"
                f"address = 127.0.0.1\nport = 0\nhandler = proxy\nupstream = {upstream}\n"
                f"splice = {'yes' if use_splice else 'no'}\n")
    logf = open(log, "w")
    d = subprocess.Popen([acceptd, "-f", "-c", conf], stdout=logf, stderr=logf)
    text = ""
    for _ in range(200):
        text = open(log).read()
        if "master ready" in text:
            break
        time.sleep(0.02)
    port = int(re.search(r"listening: p 127\.0\.0\.1:(\d+)", text).group(1))
    worker = int(re.search(r"worker 0 started \(pid (\d+)\)", text).group(1))
    c0 = cpu_ms(worker)
    t0 = time.monotonic()
    cs = socket.create_connection(("127.0.0.1", port))
    buf = b"\x5a" * CHUNK
    left = size
    while left:
        n = min(left, CHUNK)
        cs.sendall(buf[:n])
        left -= n
    cs.shutdown(socket.SHUT_WR)
    cs.recv(1)            # the proxy closes once the sink has it all
    os.waitpid(spid, 0)
    dt = time.monotonic() - t0
    c1 = cpu_ms(worker)
    cs.close()
    d.terminate()
    d.wait()
    logf.close()
    return c1 - c0, dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--acceptd", default="build/acceptd")
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--unix", action="store_true")
    a = ap.parse_args()
    size = int(a.gib * (1 << 30))
    with tempfile.TemporaryDirectory() as tmp:
        for use_splice in (True, False):
            cpus, times = [], []
            for _ in range(a.runs):
                c, t = run(a.acceptd, size, use_splice, a.unix, tmp)
                cpus.append(c)
                times.append(t)
            mb = size / (1 << 20)
            print(f"splice={'yes' if use_splice else 'no '} upstream={'unix' if a.unix else 'tcp '} "
                  f"worker CPU ms: {' '.join(map(str, cpus))} (mean {sum(cpus)/len(cpus):.0f}); "
                  f"MiB/s: {' '.join('%.0f' % (mb / t) for t in times)}")
            sys.stdout.flush()


main()
