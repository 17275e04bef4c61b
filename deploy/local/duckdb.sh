#!/usr/bin/env bash
# Provides the prebuilt DuckDB shared library the warehouse projection links against, and prints
# the directory holding it.
#
# Why prebuilt: the `duckdb` crate's `bundled` feature compiles DuckDB's C++ (41 minutes, 2.1 GB RAM
# on 2 cores), too slow for CI. npm's `@duckdb/node-bindings-linux-x64` ships `libduckdb.so` with
# the C API; its version (1.5.6) must match the crate's (`duckdb = "=1.10506.1"` encodes 1.5.6):
# change both together.
#
# How cargo finds it, with no flags and no environment (see .cargo/config.toml):
#   - this script fetches the npm package once into $CHAOS_CACHE/duckdb-$VERSION (kept across
#     clones and `cargo clean`) and points the repository-local symlink `.duckdb` (gitignored) at it;
#   - `[env] DUCKDB_LIB_DIR = { value = ".duckdb", relative = true }` tells libduckdb-sys where to
#     link from (a config value cannot expand $HOME, but it can be relative to the repository, so
#     any clone in any directory works);
#   - rustflags add an rpath `$ORIGIN/../../.duckdb` and `$ORIGIN/../../../.duckdb`, which reach
#     the repository from target/<profile>/ (binaries) and target/<profile>/deps/ (test
#     executables), so every binary and test of every crate runs without LD_LIBRARY_PATH.
# Elsewhere (a CARGO_TARGET_DIR outside the repository, a copied binary, RUSTFLAGS set in the
# environment, which overrides config rustflags): `export LD_LIBRARY_PATH=$(deploy/local/duckdb.sh)`.
#
# Usage: deploy/local/duckdb.sh        idempotent; prints the library directory on stdout.
# Environment: CHAOS_CACHE (default ~/.cache/chaos-world). Needs npm (the npm registry) only the
# first time.
set -euo pipefail

VERSION=1.5.6
NPM_PACKAGE=@duckdb/node-bindings-linux-x64@$VERSION-r.1

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CHAOS_CACHE=${CHAOS_CACHE:-$HOME/.cache/chaos-world}
LIB_DIR=$CHAOS_CACHE/duckdb-$VERSION
LINK=$REPO/.duckdb

log() { printf 'duckdb: %s\n' "$*" >&2; }
die() { printf 'duckdb: ERROR: %s\n' "$*" >&2; exit 1; }

if [ ! -f "$LIB_DIR/libduckdb.so" ]; then
    command -v npm >/dev/null || die "npm is needed once to fetch $NPM_PACKAGE (apt-get install -y npm)"
    mkdir -p "$CHAOS_CACHE"
    work=$(mktemp -d "$CHAOS_CACHE/.duckdb-fetch.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    log "fetching $NPM_PACKAGE"
    (cd "$work" && npm pack --silent "$NPM_PACKAGE" >/dev/null) \
        || die "npm pack $NPM_PACKAGE failed"
    tar -xzf "$work"/*.tgz -C "$work"
    [ -f "$work/package/libduckdb.so" ] || die "$NPM_PACKAGE has no package/libduckdb.so"
    mkdir -p "$work/lib"
    mv "$work/package/libduckdb.so" "$work/package/LICENSE" "$work/lib/"
    # Publish atomically ($work is on the same filesystem): a concurrent run sees no directory or
    # a complete one; if another run won the race, its copy is kept.
    mv -T "$work/lib" "$LIB_DIR" 2>/dev/null || true
    [ -f "$LIB_DIR/libduckdb.so" ] || die "could not install into $LIB_DIR"
    log "installed DuckDB $VERSION into $LIB_DIR"
fi

# The repository-local path that .cargo/config.toml and the rpath name. A real directory there (not
# a symlink) is left alone: someone put a library there on purpose.
if [ -L "$LINK" ] || [ ! -e "$LINK" ]; then
    if [ "$(readlink "$LINK" 2>/dev/null || true)" != "$LIB_DIR" ]; then
        ln -sfn "$LIB_DIR" "$LINK"
    fi
fi

printf '%s\n' "$LIB_DIR"
