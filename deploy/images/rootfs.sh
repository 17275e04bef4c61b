#!/usr/bin/env bash
# Lays out the root filesystem of one service image: the release binary, exactly the shared
# libraries it loads (resolved with ldd, libduckdb.so included for the projector), CA certificates,
# and an /etc/passwd naming the non-root user the manifests run as (uid/gid 65532). Nothing else:
# no shell, no package manager. The result is COPY'd into a `FROM scratch` image by the
# Containerfile, both when building from source (inside the Debian 12 build stage) and from
# binaries built on a Debian 12 host (deploy/images/build.sh --prebuilt).
#
# Usage: deploy/images/rootfs.sh SERVICE BIN_DIR OUT_DIR
#   SERVICE  an image name from deploy/images/services (command-api, relay, projector, query-api)
#   BIN_DIR  where the release binaries are (target/release)
#   OUT_DIR  created (must not exist); receives the image's root filesystem
# Environment: DUCKDB_LIB_DIR, where libduckdb.so is when the binary's rpath does not find it
# (default: the repository's .duckdb, as deploy/local/duckdb.sh sets it up).
#
# The binaries must come from glibc-based Debian 12 (bookworm): the libraries copied are the build
# machine's, so the image is exactly what the binary was linked and tested against.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
UID_GID=65532

die() { printf 'rootfs: ERROR: %s\n' "$*" >&2; exit 1; }

[ $# -eq 3 ] || die "usage: rootfs.sh SERVICE BIN_DIR OUT_DIR"
service=$1 bin_dir=$2 out=$3
binary=$(awk -v s="$service" '$1 == s { print $2 }' "$HERE/services")
[ -n "$binary" ] || die "unknown service $service (see $HERE/services)"
[ -x "$bin_dir/$binary" ] || die "$bin_dir/$binary is not an executable (build it first: cargo build --release --bins)"
[ ! -e "$out" ] || die "$out already exists"
duckdb_dir=${DUCKDB_LIB_DIR:-$REPO/.duckdb}

mkdir -p "$out"/usr/local/bin "$out"/etc/ssl/certs "$out"/tmp "$out"/usr/share/doc
chmod 1777 "$out/tmp"
install -m 0755 "$bin_dir/$binary" "$out/usr/local/bin/$binary"

# Shared libraries, the dynamic loader included. A library found outside the system directories
# (libduckdb.so through the development rpath or DUCKDB_LIB_DIR) goes to /usr/lib/x86_64-linux-gnu,
# which the loader searches by default, so the image needs neither LD_LIBRARY_PATH nor ld.so.cache.
ldd_out=$(LD_LIBRARY_PATH="$duckdb_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$bin_dir/$binary") ||
  die "ldd $bin_dir/$binary failed (not a dynamic glibc executable?)"
if grep -q 'not found' <<<"$ldd_out"; then
  die "unresolved libraries for $binary:"$'\n'"$(grep 'not found' <<<"$ldd_out")"
fi
copied=()
while read -r path; do
  [ -n "$path" ] || continue
  case "$path" in
    /lib/* | /lib64/* | /usr/lib/* | /usr/lib64/*) dest=$path ;;
    *) dest=/usr/lib/x86_64-linux-gnu/$(basename "$path") ;;
  esac
  mkdir -p "$out$(dirname "$dest")"
  cp -L "$path" "$out$dest" # dereferenced: the soname path holds the real file
  chmod 0644 "$out$dest"
  copied+=("$path")
done < <(awk '/=>/ { print $3; next } /^[[:space:]]*\// { print $1 }' <<<"$ldd_out" | sort -u)
# The loader itself must stay executable (it is the program interpreter).
interp=$(awk '/^[[:space:]]*\// { print $1 }' <<<"$ldd_out" | head -n 1)
[ -n "$interp" ] && chmod 0755 "$out$interp"

# Licences of what is shipped: the Debian packages' copyright files and DuckDB's licence.
if command -v dpkg >/dev/null 2>&1; then
  for path in "${copied[@]}"; do
    pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -n 1 | cut -d: -f1) || true
    if [ -z "$pkg" ]; then pkg=$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1) || true; fi
    if [ -n "$pkg" ] && [ -f "/usr/share/doc/$pkg/copyright" ]; then
      mkdir -p "$out/usr/share/doc/$pkg"
      cp "/usr/share/doc/$pkg/copyright" "$out/usr/share/doc/$pkg/copyright"
    fi
  done
fi
if grep -q libduckdb <<<"$ldd_out" && [ -f "$duckdb_dir/LICENSE" ]; then
  mkdir -p "$out/usr/share/doc/duckdb"
  cp "$duckdb_dir/LICENSE" "$out/usr/share/doc/duckdb/LICENSE"
fi

# TLS roots for MSK, ElastiCache and the registry (OpenSSL, rustls-native-certs and librdkafka's
# probe all find this path; the image also sets SSL_CERT_FILE to it).
ca=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca" ] || die "$ca is missing (apt-get install -y ca-certificates)"
cp "$ca" "$out$ca"
chmod 0644 "$out$ca"
# OpenSSL's compiled-in defaults on Debian (OPENSSLDIR /usr/lib/ssl), for a client that ignores
# SSL_CERT_FILE.
mkdir -p "$out/usr/lib/ssl"
ln -s /etc/ssl/certs/ca-certificates.crt "$out/usr/lib/ssl/cert.pem"
ln -s /etc/ssl/certs "$out/usr/lib/ssl/certs"

# The user the pods run as (runAsUser/runAsGroup 65532 in deploy/k8s); named so that tools and
# logs show a name, with no shell and no writable home.
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/nonexistent:/sbin/nologin\n' \
  "$UID_GID" "$UID_GID" >"$out/etc/passwd"
printf 'root:x:0:\nnonroot:x:%s:\n' "$UID_GID" >"$out/etc/group"
# glibc resolves hosts through /etc/hosts, then DNS (both built into libc 2.36).
printf 'hosts: files dns\n' >"$out/etc/nsswitch.conf"
chmod 0644 "$out"/etc/passwd "$out"/etc/group "$out"/etc/nsswitch.conf

printf 'rootfs: %s: %s, %d libraries, %s\n' "$service" "$binary" "${#copied[@]}" "$(du -sh "$out" | cut -f1)" >&2
