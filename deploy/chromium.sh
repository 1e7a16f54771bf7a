#!/usr/bin/env bash
# deploy/chromium.sh
#
# Makes sure a headless-capable Chromium, which the console's tests drive over the
# DevTools protocol (TEST_CHROMIUM), is on PATH: when none is, installs Debian's
# chromium package. Prints its path.
set -euo pipefail

name=chromium
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

find_chromium() { command -v chromium || command -v chromium-browser || command -v google-chrome; }

dir=$root/.cache/services/chromium
if ! find_chromium >/dev/null 2>&1; then
	lock "$dir"
	find_chromium >/dev/null 2>&1 || apt_install "$dir/apt.log" chromium
	say "installed $("$(find_chromium)" --version 2>/dev/null | head -n 1)"
fi
find_chromium
