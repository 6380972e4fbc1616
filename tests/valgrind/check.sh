#!/usr/bin/env bash
# The daemon under valgrind, master and workers: start, serve echo and
# http over 127.0.0.1 (and echo over a unix socket), TERM; every process
# must report no errors and no definite leaks, and the master exit 0.
# Usage: tests/valgrind/check.sh [ACCEPTD]   (bounded: about 30 s at most)
set -uo pipefail
acceptd=${1:-build/acceptd}
command -v valgrind >/dev/null || { echo "valgrind check: valgrind is not installed"; exit 1; }
[ -x "$acceptd" ] || { echo "valgrind check: no $acceptd"; exit 1; }
dir=$(mktemp -d /tmp/acceptd-vg.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	# workers are the master's children; PR_SET_PDEATHSIG ends them with it
	rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "valgrind check: FAIL: $*"; echo "---- log"; cat "$dir/log"; for f in "$dir"/vg.*; do echo "---- $f"; cat "$f"; done; exit 1; }

for mode in reuseport shared; do
	rm -f "$dir"/vg.* "$dir/log"
	cat > "$dir/acceptd.conf" <<CONF
[daemon]
workers = 2
mode = $mode
shutdown_timeout = 2s

[listener e]
address = 127.0.0.1
port = 0

[listener web]
address = 127.0.0.1
port = 0
handler = http
body = hello from valgrind\n

[listener u]
address = unix:$dir/e.sock
CONF
	valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 \
	    --trace-children=yes --child-silent-after-fork=no --log-file="$dir/vg.%p" \
	    "$acceptd" -f -c "$dir/acceptd.conf" >"$dir/log" 2>&1 &
	pid=$!
	for _ in $(seq 300); do
		grep -q "master ready" "$dir/log" && break
		kill -0 "$pid" 2>/dev/null || fail "$mode: the master died at start"
		sleep 0.1
	done
	grep -q "master ready" "$dir/log" || fail "$mode: not ready within 30 s"
	eport=$(sed -n 's/.*listening: e 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/log" | head -1)
	wport=$(sed -n 's/.*listening: web 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/log" | head -1)
	[ -n "$eport" ] && [ -n "$wport" ] || fail "$mode: no listening lines"

	for i in 1 2 3 4 5 6; do
		exec 3<>/dev/tcp/127.0.0.1/"$eport" || fail "$mode: connect echo"
		printf 'ping %s\n' "$i" >&3
		read -r -t 10 line <&3 || fail "$mode: no echo"
		[ "$line" = "ping $i" ] || fail "$mode: echo said '$line'"
		exec 3>&-
		exec 3<>/dev/tcp/127.0.0.1/"$wport" || fail "$mode: connect http"
		printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
		resp=$(timeout 10 cat <&3)
		exec 3>&-
		[ "$(grep -c 'hello from valgrind' <<<"$resp")" = 2 ] || fail "$mode: http said '$resp'"
		# garbage and a reset-prone early close
		exec 3<>/dev/tcp/127.0.0.1/"$wport" && { printf 'BAD\x01\r\n\r\n' >&3; timeout 10 cat <&3 >/dev/null; exec 3>&-; }
	done
	if command -v socat >/dev/null; then
		[ "$(printf 'unix\n' | timeout 10 socat - UNIX-CONNECT:"$dir/e.sock")" = unix ] ||
		    fail "$mode: no echo over the unix socket"
	fi

	kill -TERM "$pid"
	for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && fail "$mode: the master did not exit within 30 s of TERM"
	wait "$pid"; rc=$?
	pid=
	[ "$rc" = 0 ] || fail "$mode: the master exited $rc"
	n=0
	for f in "$dir"/vg.*; do
		n=$((n + 1))
		# -q: a clean process leaves its log empty
		[ -s "$f" ] && fail "$mode: valgrind reports in $f"
	done
	[ "$n" -ge 3 ] || fail "$mode: $n valgrind logs, want master and 2 workers"
	grep -q "exited with status\|killed by signal" "$dir/log" && fail "$mode: a worker failed"
	echo "valgrind check: ok: $mode mode, $n processes, no errors, no definite leaks"
done
