#!/usr/bin/env bash
# check.sh: `make install` into a temporary DESTDIR, then: every file is
# where it belongs, the units pass `systemd-analyze verify` with ExecStart
# resolving to the installed binary, the man pages render without a groff
# warning, an existing config is never overwritten, and `make uninstall`
# removes what install put there. Every step is bounded; the DESTDIR is
# removed on exit whatever happens.
#
#   tests/install/check.sh [MAKE-ARGS...]     e.g. B=build/san SANITIZE=1
#
# Exit status 0 when every check passed, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

PREFIX=/usr/local
SYSCONFDIR=$PREFIX/etc
STEP_TIMEOUT=${STEP_TIMEOUT:-120}
MAKE_TIMEOUT=${MAKE_TIMEOUT:-600}
fails=0
D=$(mktemp -d /tmp/acceptd-install-XXXXXX) || exit 1
W=$(mktemp -d /tmp/acceptd-install-work-XXXXXX) || { rm -rf "$D"; exit 1; }
trap 'rm -rf "$D" "$W"' EXIT
trap 'exit 1' INT TERM

pass() { echo "install check: ok: $*"; }
fail() { echo "install check: FAILED: $*" >&2; fails=$((fails + 1)); }
skip() { echo "install check: skipped: $*"; }

# Until the Makefile includes install.mk, bring it in ourselves.
mk=(make --no-print-directory)
grep -Eq '^[-s]?include +install\.mk' Makefile || mk+=(-f Makefile -f install.mk)
mk+=("PREFIX=$PREFIX" "SYSCONFDIR=$SYSCONFDIR" "DESTDIR=$D" "$@")

files=(
	"$PREFIX/sbin/acceptd"
	"$PREFIX/lib/pkgconfig/acceptd.pc"
	"$PREFIX/share/man/man8/acceptd.8"
	"$PREFIX/share/man/man5/acceptd.conf.5"
	"$PREFIX/lib/systemd/system/acceptd.service"
	"$PREFIX/lib/systemd/system/acceptd.socket"
	"$SYSCONFDIR/acceptd/acceptd.conf"
)
[ -f include/acceptd/module.h ] && files+=("$PREFIX/include/acceptd/module.h")

# ---- install ----
if ! timeout "$MAKE_TIMEOUT" "${mk[@]}" install >"$W/install.log" 2>&1; then
	cat "$W/install.log" >&2
	fail "make install DESTDIR=$D"
	exit 1
fi
pass "make install DESTDIR=$D PREFIX=$PREFIX"

for f in "${files[@]}"; do
	[ -f "$D$f" ] || fail "missing $f"
done
[ -x "$D$PREFIX/sbin/acceptd" ] || fail "$PREFIX/sbin/acceptd is not executable"
if grep -rl '@[A-Z]*DIR@\|@PREFIX@\|@VERSION@' "$D" >"$W/unsubst"; then
	fail "placeholders left in: $(tr '\n' ' ' <"$W/unsubst")"
fi
grep -q "^ExecStart=$PREFIX/sbin/acceptd -f -c $SYSCONFDIR/acceptd/acceptd.conf\$" \
	"$D$PREFIX/lib/systemd/system/acceptd.service" || fail "ExecStart not substituted"
# Anything installed that is not on the list is a surprise too (modules
# aside: which ones there are depends on what was built).
(cd "$D" && find . -type f | sed 's|^\.||' | grep -v "^$PREFIX/lib/acceptd/[^/]*\.so\$" | sort) \
	>"$W/found"
printf '%s\n' "${files[@]}" | sort >"$W/expected"
if ! diff -u "$W/expected" "$W/found" >"$W/diff"; then
	fail "installed files differ from the list:"; cat "$W/diff" >&2
fi
[ "$fails" = 0 ] && pass "all ${#files[@]} files installed"

# ---- the binary runs and finds its config ----
if timeout "$STEP_TIMEOUT" "$D$PREFIX/sbin/acceptd" -t -c "$D$SYSCONFDIR/acceptd/acceptd.conf" \
	>"$W/t.log" 2>&1; then
	pass "installed acceptd -t accepts the installed config"
else
	fail "installed acceptd -t: $(cat "$W/t.log")"
fi

# ---- pkg-config ----
pcdir=$D$PREFIX/lib/pkgconfig
if command -v pkg-config >/dev/null 2>&1; then
	v=$(PKG_CONFIG_PATH=$pcdir pkg-config --modversion acceptd 2>&1)
	want=$(sed -n 's/^VERSION *:= *//p' Makefile)
	if [ "$v" = "$want" ]; then pass "pkg-config --modversion acceptd = $v"
	else fail "pkg-config --modversion acceptd: '$v', want '$want'"; fi
	c=$(PKG_CONFIG_PATH=$pcdir PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 pkg-config --cflags acceptd 2>&1)
	c=${c%% }
	if [ "$c" = "-I$PREFIX/include" ]; then pass "pkg-config --cflags acceptd = $c"
	else fail "pkg-config --cflags acceptd: '$c'"; fi
	if [ -f include/acceptd/module.h ]; then
		# Against the installed header: the sysroot maps -I into DESTDIR.
		printf '#include <acceptd/module.h>\n' >"$W/mod.c"
		read -ra cflags < <(PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$D \
			PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 pkg-config --cflags acceptd)
		if timeout "$STEP_TIMEOUT" "${CC:-cc}" -fsyntax-only -Wall -Werror "${cflags[@]}" \
			"$W/mod.c" >"$W/cc.log" 2>&1; then
			pass "acceptd/module.h compiles with pkg-config --cflags acceptd"
		else
			fail "compiling against the installed module.h: $(cat "$W/cc.log")"
		fi
		# A whole module, as its author builds it: the installed header only.
		if timeout "$STEP_TIMEOUT" "${CC:-cc}" -shared -fPIC -Wall -Werror "${cflags[@]}" \
			-o "$W/hello.so" modules/hello.c >"$W/cc.log" 2>&1 &&
			{ ! command -v nm >/dev/null 2>&1 || nm -D "$W/hello.so" | grep -q ' acceptd_module$'; }; then
			pass "modules/hello.c builds into a module against the installed header"
		else
			fail "building modules/hello.c against the installed header: $(cat "$W/cc.log")"
		fi
	else
		skip "include/acceptd/module.h does not exist yet"
	fi
else
	skip "pkg-config not installed"
fi

# ---- systemd-analyze verify ----
# ExecStart must resolve, so the installed tree has to be at PREFIX itself.
# Best: a private mount namespace with DESTDIR's PREFIX bound over PREFIX
# (nothing outside the namespace sees it). Else: copies of the units with
# DESTDIR put in front of ExecStart. Documentation=man: pages are looked up
# through MANPATH. Any output naming acceptd is a failure.
udir=$PREFIX/lib/systemd/system
verify() {  # verify DIR MANPATH-DIR [wrapper...]
	local dir=$1 manp=$2; shift 2
	local man_opt=()
	command -v man >/dev/null 2>&1 || man_opt=(--man=no)
	MANPATH=$manp: timeout "$STEP_TIMEOUT" "$@" systemd-analyze verify "${man_opt[@]}" \
		"$dir/acceptd.service" "$dir/acceptd.socket" >"$W/verify.log" 2>&1
	local rc=$?
	if [ $rc != 0 ] || grep -q acceptd "$W/verify.log"; then
		cat "$W/verify.log" >&2
		return 1
	fi
	[ -s "$W/verify.log" ] && sed 's/^/  (not ours) /' "$W/verify.log"
	return 0
}
if ! command -v systemd-analyze >/dev/null 2>&1; then
	skip "systemd-analyze not installed (apt-get install systemd)"
else
	ns=()
	if command -v unshare >/dev/null 2>&1 && [ -d "$PREFIX" ]; then
		if [ "$(id -u)" = 0 ]; then ns=(unshare -m --propagation private)
		else ns=(unshare -r -m --propagation private); fi
		"${ns[@]}" true 2>/dev/null || ns=()
	fi
	if [ ${#ns[@]} -gt 0 ]; then
		no_man=; command -v man >/dev/null 2>&1 || no_man=--man=no
		{
			echo "mount --bind '$D$PREFIX' '$PREFIX' || exit 99"
			echo "MANPATH=$PREFIX/share/man: systemd-analyze verify $no_man $udir/acceptd.service $udir/acceptd.socket"
		} >"$W/ns.sh"
		timeout "$STEP_TIMEOUT" "${ns[@]}" sh "$W/ns.sh" >"$W/verify.log" 2>&1
		rc=$?
		if [ $rc = 99 ]; then
			ns=()      # no bind mount here after all: fall back below
		elif [ $rc != 0 ] || grep -q acceptd "$W/verify.log"; then
			cat "$W/verify.log" >&2
			fail "systemd-analyze verify (installed tree mounted at $PREFIX)"
		else
			pass "systemd-analyze verify on the installed units (DESTDIR bound at $PREFIX)"
		fi
	fi
	if [ ${#ns[@]} = 0 ]; then
		mkdir -p "$W/units"
		sed "s|^ExecStart=$PREFIX/|ExecStart=$D$PREFIX/|" "$D$udir/acceptd.service" \
			>"$W/units/acceptd.service"
		cp "$D$udir/acceptd.socket" "$W/units/"
		if verify "$W/units" "$D$PREFIX/share/man"; then
			pass "systemd-analyze verify (copies with ExecStart=$D$PREFIX/sbin/acceptd)"
		else
			fail "systemd-analyze verify"
		fi
	fi
fi

# ---- man pages: no groff warning ----
for page in share/man/man8/acceptd.8 share/man/man5/acceptd.conf.5; do
	p=$D$PREFIX/$page
	if command -v man >/dev/null 2>&1; then
		out=$(MANWIDTH=80 timeout "$STEP_TIMEOUT" man --warnings -l "$p" 2>&1 >/dev/null)
		rc=$?
	elif command -v groff >/dev/null 2>&1; then
		out=$(timeout "$STEP_TIMEOUT" groff -man -ww -z -Tutf8 "$p" 2>&1)
		rc=$?
	else
		skip "neither man nor groff installed (apt-get install man-db groff-base)"
		break
	fi
	if [ "$rc" != 0 ] || [ -n "$out" ]; then
		fail "man -l ${page##*/}: $out"
	elif ! MANWIDTH=80 man -l "$p" 2>/dev/null | grep -q "^NAME"; then
		fail "man -l ${page##*/} renders no NAME section"
	else
		pass "man -l ${page##*/} renders without warnings"
	fi
done

# ---- an existing config is kept ----
conf=$D$SYSCONFDIR/acceptd/acceptd.conf
echo "; edited by the operator" >>"$conf"
if ! timeout "$MAKE_TIMEOUT" "${mk[@]}" install >"$W/install2.log" 2>&1; then
	cat "$W/install2.log" >&2
	fail "second make install"
elif tail -n 1 "$conf" | grep -q "edited by the operator"; then
	pass "a second install keeps the existing config"
else
	fail "a second install overwrote $SYSCONFDIR/acceptd/acceptd.conf"
fi

# ---- uninstall ----
if ! timeout "$MAKE_TIMEOUT" "${mk[@]}" uninstall >"$W/uninstall.log" 2>&1; then
	cat "$W/uninstall.log" >&2
	fail "make uninstall"
else
	# The edited config stays (it is the operator's); nothing else may.
	left=$(cd "$D" && find . -type f | sed 's|^\.||' | sort)
	if [ "$left" != "$SYSCONFDIR/acceptd/acceptd.conf" ]; then
		fail "after make uninstall, left: ${left//$'\n'/ }"
	else
		pass "make uninstall removed everything but the edited config"
	fi
	# An unedited config goes with the rest.
	rm -f "$conf"
	timeout "$MAKE_TIMEOUT" "${mk[@]}" install >/dev/null 2>&1 &&
		timeout "$MAKE_TIMEOUT" "${mk[@]}" uninstall >/dev/null 2>&1
	left=$(cd "$D" && find . -type f | wc -l)
	if [ "$left" = 0 ]; then pass "make uninstall removes an unedited config"
	else fail "after install + uninstall, $left files left"; fi
	[ -d "$D$SYSCONFDIR/acceptd" ] && fail "$SYSCONFDIR/acceptd left behind"
fi

if [ "$fails" = 0 ]; then
	echo "install check: all passed"
	exit 0
fi
echo "install check: $fails FAILED" >&2
exit 1
