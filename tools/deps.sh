#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Usage: tools/deps.sh PACKAGE...
#
# Checks that the Debian packages named on the command line are installed.
# Prints nothing when they all are. Otherwise, as root, installs the missing
# ones with apt-get; as any other user, prints the apt-get line to run and
# exits 1, because a build must not ask for a password behind the user's back.
set -eu

if [ "$#" -eq 0 ]; then
	echo "usage: $0 PACKAGE..." >&2
	exit 2
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps.sh: dpkg-query not found (not Debian?); not checking for: $*" >&2
	exit 0
fi

missing=
for pkg in "$@"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	if [ "$status" != "install ok installed" ]; then
		missing="$missing $pkg"
	fi
done
missing=${missing# }

if [ -z "$missing" ]; then
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	echo "deps.sh: installing missing packages: $missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	# $missing is a space-separated list of package names; split it on purpose.
	# shellcheck disable=SC2086
	apt-get update && apt-get install -y $missing
	exit $?
fi

echo "deps.sh: missing Debian packages: $missing" >&2
echo "Install them with:" >&2
echo "  sudo apt-get install -y $missing" >&2
exit 1
