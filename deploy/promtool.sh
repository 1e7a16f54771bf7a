#!/usr/bin/env bash
# deploy/promtool.sh
#
# Makes sure promtool, which the tests run as `promtool check metrics` on a scrape of
# /metrics (TEST_PROMTOOL), is on PATH: when it is not, installs Debian's prometheus
# package, which has it, and keeps its system service stopped. Prints promtool's path.
set -euo pipefail

name=promtool
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

dir=$root/.cache/services/promtool
if ! command -v promtool >/dev/null 2>&1; then
	lock "$dir"
	command -v promtool >/dev/null 2>&1 || install_service "$dir/apt.log" prometheus prometheus
	say "installed $(promtool --version 2>&1 | head -n 1)"
fi
command -v promtool
