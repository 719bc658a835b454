#!/usr/bin/env bash
# Builds the Debian package of svi: target/debian/svi_<version>_<arch>.deb
#
#   scripts/package.sh                       # release build, then the package
#   scripts/package.sh --binary PATH         # package an already built binary (tests)
#   scripts/package.sh --out DIR             # where the .deb goes
#   scripts/package.sh --compression none    # dpkg-deb's -Z (default xz)
#
# Needs cargo (for the build) and dpkg-deb (every Debian system has it). The layout, the
# units and the maintainer scripts are in packaging/; the configuration templates are made
# from samples/ (see docs/operations.md, "Install from the package").
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
out="target/debian"
compression="xz"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --compression) compression="$2"; shift 2 ;;
    *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ -z "$binary" ]; then
  cargo build --release --bin svi
  binary=target/release/svi
fi
[ -x "$binary" ] || { echo "package.sh: $binary is not an executable" >&2; exit 2; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
if rev=$(git rev-parse --short HEAD 2>/dev/null); then
  version="$version+git$rev"
fi
arch=$(dpkg --print-architecture)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/root"

install -D -m 0755 "$binary" "$root/usr/bin/svi"
install -d "$root/usr/share/svi/prompts" "$root/etc/svi/flows" "$root/usr/share/doc/svi"
cp -r samples/prompts/en samples/prompts/fr "$root/usr/share/svi/prompts/"
install -D -m 0644 samples/data/sample.sql "$root/usr/share/svi/data/sample.sql"
install -D -m 0644 samples/data/helpdesk.sql "$root/usr/share/svi/data/helpdesk.sql"
install -m 0644 samples/flows/*.yaml "$root/etc/svi/flows/"
install -D -m 0644 packaging/systemd/svi.service "$root/lib/systemd/system/svi.service"
install -D -m 0644 packaging/systemd/svi-witness.service \
  "$root/lib/systemd/system/svi-witness.service"
install -m 0644 README.md docs/operations.md docs/ha.md docs/flows.md "$root/usr/share/doc/svi/"

# The configuration templates: the samples with the package's paths, no demo agents or
# sample secret, and `unconfigured = true`, which the engine refuses until it is removed.
unconfigured='# Remove the next line once this file is set up for this site: the service refuses to\
# start while it is here (docs/operations.md, "Install from the package").\
unconfigured = true'
sed -e 's|^data_dir = .*|data_dir = "/var/lib/svi"|' \
    -e 's|^# Overridden by --data-dir.*|# The unit may write only there (ReadWritePaths).|' \
    -e '/^\[prompts\]/,/^\[/ s|^dir = "prompts"|dir = "/usr/share/svi/prompts"|' \
    -e '/^\[flows\]/,/^\[/ s|^dir = "flows"|dir = "/etc/svi/flows"|' \
    -e 's|^database = "data/sample.db"|database = "/var/lib/svi/sample.db"|' \
    -e 's|^init_sql = "data/sample.sql"|init_sql = "/usr/share/svi/data/sample.sql"|' \
    -e 's|^database = "data/helpdesk.db"|database = "/var/lib/svi/helpdesk.db"|' \
    -e 's|^init_sql = "data/helpdesk.sql"|init_sql = "/usr/share/svi/data/helpdesk.sql"|' \
    -e "/^\[node\]\$/a $unconfigured" \
    samples/svi.toml | awk '/^# Agents\./ { stop = 1 } !stop { print }' > "$root/etc/svi/svi.toml"
cat >> "$root/etc/svi/svi.toml" <<'EOF'
# Agents: one section each, with a password of its own (a phone registering as the agent's
# id with it makes the agent ready), e.g.
# [[agents]]
# id = "1001"
# name = "Agent 1001"
# password = "..."
# skills = { support = 5 }
EOF
sed -e 's|^data_dir = .*|data_dir = "/var/lib/svi"|' \
    -e 's|^secret = .*|secret_env = "SVI_HA_SECRET"   # set in /etc/svi/environment (mode 0640)|' \
    -e "/^\[node\]\$/a $unconfigured" \
    samples/ha/witness.toml > "$root/etc/svi/witness.toml"
for f in svi.toml witness.toml; do
  # Both greps read all their input (no -q): under pipefail an early exit would make the
  # first one fail with SIGPIPE, and the pipeline with it.
  if grep -v '^[[:space:]]*#' "$root/etc/svi/$f" | grep 'demo-\|change-me' >/dev/null; then
    echo "package.sh: $f still holds a sample credential" >&2
    exit 1
  fi
done

install -d "$root/DEBIAN"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm \
  "$root/DEBIAN/"
(cd "$root" && find etc -type f | sed 's|^|/|' | sort) > "$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<EOF
Package: svi
Version: $version
Architecture: $arch
Maintainer: svi maintainers <maintainers@svi.invalid>
Installed-Size: $size
Depends: libc6 (>= 2.34), libgcc-s1, adduser
Section: comm
Priority: optional
Description: SIP/RTP IVR and contact-center engine with high-availability pairing
 svi answers calls from a PBX over SIP, runs IVR call flows written in YAML,
 queues callers for agents, records calls, and runs as an active/standby pair
 with a witness. Units: svi.service (the engine), svi-witness.service (the
 pair's witness).
EOF
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) \
  > "$root/DEBIAN/md5sums"

mkdir -p "$out"
deb="$out/svi_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"$compression" --build "$root" "$deb" >/dev/null
echo "$deb"
