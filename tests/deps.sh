#!/bin/sh
# Build dependencies: present, or installed with apt-get (through sudo when
# not root), or one line naming what is missing. Used by `make`.
missing=
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
[ -f /usr/include/ev.h ] || missing="$missing libev-dev"
if command -v pkg-config >/dev/null 2>&1; then
	pkg-config --exists inih || missing="$missing libinih-dev"
	pkg-config --exists check || missing="$missing check"
else
	[ -f /usr/include/ini.h ] || missing="$missing libinih-dev"
	[ -f /usr/include/check.h ] || missing="$missing check"
fi
[ -z "$missing" ] && exit 0

sudo=
[ "$(id -u)" = 0 ] || sudo=sudo
if command -v apt-get >/dev/null 2>&1 && { [ -z "$sudo" ] || command -v sudo >/dev/null 2>&1; }; then
	echo "acceptd: installing build dependencies:$missing (apt-get)" >&2
	$sudo apt-get update -qq >/dev/null 2>&1
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null && exit 0
fi
echo "acceptd: missing build dependencies, install them with: apt-get install$missing" >&2
exit 1
