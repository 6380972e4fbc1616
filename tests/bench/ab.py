#!/usr/bin/env python3
"""A/B: acceptd binaries side by side with the floor, interleaved, in one run.

    python3 tests/bench/ab.py [--rounds 7] [--workloads close,keepalive,echo]
        [--setup pinned|2w] [--mode reuseport|shared] --bin build/bench
        NAME=PATH [NAME=PATH ...]

Each NAME=PATH is an acceptd binary (build an older commit with `git
worktree add /tmp/old REV && make -C /tmp/old`). The servers take turns
(A B C A B C ...) on their own loopback ports, as in `make bench`, and the
figure is the same: server CPU time per request, median [min-max] over the
rounds, and its ratio to the floor measured in the same run. For the
question "did this change help": the full `make bench` answers others.
"""
import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--workloads", default="close,keepalive")
    ap.add_argument("--setup", choices=("pinned", "2w"), default="pinned")
    ap.add_argument("--mode", choices=("reuseport", "shared"), default="reuseport")
    ap.add_argument("--bin", required=True, help="where floor and load are (build/bench)")
    ap.add_argument("binaries", nargs="+", metavar="NAME=PATH")
    args = ap.parse_args()
    wls = args.workloads.split(",")
    pin = "0" if args.setup == "pinned" else None
    pin_load = "1" if args.setup == "pinned" else None
    workers = 1 if args.setup == "pinned" else 2
    tmp = tempfile.mkdtemp(prefix="acceptd-ab-")
    port = bench.BASE_PORT + 900      # clear of every part of make bench
    r = ["-r"] if args.mode == "reuseport" else []
    floor = os.path.join(os.path.abspath(args.bin), "floor")
    srv = [(bench.Server("floor", "floor", args.mode, port, [floor, "-w", str(workers), "-p",
                                                              str(port)] + r, tmp, pin),
            bench.Server("floor-echo", "floor", args.mode, port + 1,
                         [floor, "-e", "-w", str(workers), "-p", str(port + 1)] + r, tmp, pin))]
    for spec in args.binaries:
        name, path = spec.split("=", 1)
        port += 2
        conf = bench.acceptd_conf(tmp, name, workers, args.mode, port, port + 1)
        srv.append((bench.Server(name, "acceptd", args.mode, port,
                                 [os.path.abspath(path), "-f", "-c", conf], tmp, pin,
                                 echo_port=port + 1), None))
    res = {}
    try:
        for s, twin in srv:
            s.start()
            if twin:
                twin.start()
        for rnd in range(args.rounds):
            for wl in wls:
                for s, twin in srv:
                    t = twin if (wl == "echo" and twin) else s
                    c0 = bench.cpu(t.proc.pid)
                    if wl == "echo":
                        n, _ = bench.run_echo(os.path.join(args.bin, "load"),
                                              t.echo_port or t.port, pin_load)
                    else:
                        n, _ = bench.run_wrk(s.port, wl == "close", pin_load)
                    c1 = bench.cpu(t.proc.pid)
                    res.setdefault((wl, s.name), []).append((c1[1] - c0[1]) / n * 1e6)
            bench.log(f"ab: round {rnd + 1}/{args.rounds} done")
    finally:
        for s, twin in srv:
            s.stop()
            if twin:
                twin.stop()
    for wl in wls:
        base = statistics.median(res[(wl, "floor")])
        for s, _ in srv:
            v = res[(wl, s.name)]
            m = statistics.median(v)
            print(f"{args.setup} {args.mode} {wl:9} {s.name:12} {m:6.2f} us/req "
                  f"[{min(v):.2f}-{max(v):.2f}]  x{m / base:.3f}")


if __name__ == "__main__":
    main()
