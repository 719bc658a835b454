#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, unit, conformance, scenario and
# end-to-end tests (real svi processes against sipp on loopback).
# Installs what the tests need when it is missing (sipp from Debian's sip-tester; nft from
# nftables, for the HA partition test, which also needs root to mount a small tmpfs;
# svcrack and svwar from sipvicious, for the edge tests; baresip from baresip-core, the
# softphone of the SRTP, TLS and agent tests; openssl for the test mail server's
# certificate; systemd-analyze from systemd and dpkg-deb, for the package test, which also
# needs root for its throwaway container; kamailio, the IPBX registrar of the HA
# registration test and the dispatcher in front of two pairs (samples/kamailio), with
# kamcmd to read its bindings and the dispatcher's view; promtool from prometheus, for the
# admin API's /metrics test; PostgreSQL's server for the helpdesk, central reporting and
# two-pair tests, which start a private one on a free port (the test command stops if it
# cannot be installed, rather than skip them); chromium and chromedriver from
# chromium-driver, for the admin web's browser test).
set -euo pipefail
cd "$(dirname "$0")/.."

install_debian() {
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
  fi
}

missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v svcrack >/dev/null 2>&1 || missing+=(sipvicious)
command -v baresip >/dev/null 2>&1 || missing+=(baresip-core)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v dpkg-deb >/dev/null 2>&1 || missing+=(dpkg)
command -v kamailio >/dev/null 2>&1 || missing+=(kamailio)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}"
  install_debian "${missing[@]}"
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "test.sh: installing postgresql"
  install_debian postgresql
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  # The helpdesk, central reporting and two-pair tests need a real PostgreSQL: without
  # one they would skip, and the test command would pass without them.
  echo "test.sh: PostgreSQL's server programs (initdb) are missing after the install" >&2
  exit 1
fi

# The shared conformance corpus sits beside the repository; tests find it there.
export SVI_SHARED="${SVI_SHARED:-$(cd .. && pwd)/shared}"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo build --bin svi --quiet
cargo test --workspace --no-fail-fast
