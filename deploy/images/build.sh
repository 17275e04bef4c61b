#!/usr/bin/env bash
# Builds the container image of every service (deploy/images/services) from deploy/images/Containerfile
# and writes each as an OCI archive; optionally pushes them. Daemonless: buildah is preferred
# (Debian: apt-get install -y buildah); podman or docker work too.
#
# Usage: deploy/images/build.sh [options] [IMAGE...]       (default: every image)
#   --prebuilt [DIR]  (default) package release binaries already built on this Debian 12 host
#                     (DIR, default $CARGO_TARGET_DIR/release or target/release: cargo build
#                     --release --bins). Pulls nothing, so it works where no container registry is
#                     reachable.
#   --from-source     compile inside the Containerfile's Rust stage (needs docker.io and crates.io).
#   --tag TAG         image tag (default: git describe --tags --always --dirty).
#   --registry REG    image name prefix (default ghcr.io/chaos-world, the manifests' names).
#   --out DIR         where the OCI archives go (default target/images): DIR/<image>.oci.tar.
#   --push            push REG/<image>:TAG after building (credentials: `buildah login REG`).
#   --list            print the image names (REG/<image>) and exit; deploy/validate.sh uses it.
# Then pin the tag in the overlays: (cd deploy/k8s/overlays/<stage> && kustomize edit set image
# ghcr.io/chaos-world/<image>=REG/<image>:TAG) — see docs/deploy.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

die() { printf 'build: ERROR: %s\n' "$*" >&2; exit 1; }
log() { printf 'build: %s\n' "$*" >&2; }

mode=prebuilt
bin_dir=${CARGO_TARGET_DIR:-$REPO/target}/release
tag=""
registry=ghcr.io/chaos-world
out=$REPO/target/images
push=false
list=false
images=()
while [ $# -gt 0 ]; do
  case "$1" in
    --prebuilt)
      mode=prebuilt
      if [ $# -gt 1 ] && [ "${2#-}" = "$2" ] && [ -d "$2" ]; then bin_dir=$(cd "$2" && pwd); shift; fi
      ;;
    --from-source) mode=source ;;
    --tag) tag=${2:?--tag needs a value}; shift ;;
    --registry) registry=${2:?--registry needs a value}; shift ;;
    --out) out=${2:?--out needs a value}; shift ;;
    --push) push=true ;;
    --list) list=true ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) images+=("$1") ;;
  esac
  shift
done
registry=${registry%/}

mapfile -t known < <(awk '!/^#/ && NF { print $1 }' "$HERE/services")
if [ "$list" = true ]; then
  printf "$registry/%s\n" "${known[@]}"
  exit 0
fi
[ ${#images[@]} -gt 0 ] || images=("${known[@]}")
for image in "${images[@]}"; do
  printf '%s\n' "${known[@]}" | grep -qx "$image" || die "unknown image $image (known: ${known[*]})"
done

if [ -z "$tag" ]; then
  tag=$(git -C "$REPO" describe --tags --always --dirty 2>/dev/null) || tag=dev
fi
revision=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)

if command -v buildah >/dev/null 2>&1; then
  builder=buildah
elif command -v podman >/dev/null 2>&1; then
  builder=podman
elif command -v docker >/dev/null 2>&1; then
  builder=docker
else
  die "no image builder: apt-get install -y buildah (daemonless), or install podman or docker"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The build context. Prebuilt: only the assembled root filesystems. From source: the repository,
# minus what must not be sent (build output, local data, git).
if [ "$mode" = prebuilt ]; then
  context=$work/context
  mkdir -p "$context/rootfs"
  # libduckdb.so: the projector's development rpath points at <repo>/.duckdb; make sure it is there.
  if printf '%s\n' "${images[@]}" | grep -qx projector && [ -z "${DUCKDB_LIB_DIR:-}" ]; then
    export DUCKDB_LIB_DIR
    DUCKDB_LIB_DIR=$("$REPO/deploy/local/duckdb.sh")
  fi
  for image in "${images[@]}"; do
    "$HERE/rootfs.sh" "$image" "$bin_dir" "$context/rootfs/$image"
  done
  build_args=(--build-arg ROOTFS=prebuilt)
else
  context=$REPO
  # Docker (BuildKit) reads Containerfile.dockerignore next to the Containerfile by itself.
  build_args=(--build-arg ROOTFS=source)
  [ "$builder" = docker ] || build_args+=(--ignorefile "$HERE/Containerfile.dockerignore")
fi

created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
mkdir -p "$out"
for image in "${images[@]}"; do
  ref=$registry/$image:$tag
  log "$ref ($mode, $builder)"
  labels=(
    --label "org.opencontainers.image.title=chaos-world $image"
    --label "org.opencontainers.image.version=$tag"
    --label "org.opencontainers.image.revision=$revision"
    --label "org.opencontainers.image.created=$created"
    --label "org.opencontainers.image.licenses=Apache-2.0"
  )
  case "$builder" in
    buildah) buildah bud --quiet --format oci --target "$image" -f "$HERE/Containerfile" \
      "${build_args[@]}" "${labels[@]}" -t "$ref" "$context" >/dev/null ;;
    podman) podman build --quiet --format oci --target "$image" -f "$HERE/Containerfile" \
      "${build_args[@]}" "${labels[@]}" -t "$ref" "$context" >/dev/null ;;
    docker) docker build --quiet --target "$image" -f "$HERE/Containerfile" \
      "${build_args[@]}" "${labels[@]}" -t "$ref" "$context" >/dev/null ;;
  esac
  archive=$out/$image.oci.tar
  rm -f "$archive"
  case "$builder" in
    buildah | podman) "$builder" push --quiet "$ref" "oci-archive:$archive:$ref" ;;
    docker) docker save -o "$archive" "$ref" ;; # docker-archive layout (docker has no OCI export)
  esac
  log "  wrote $archive ($(du -h "$archive" | cut -f1))"
  if [ "$push" = true ]; then
    case "$builder" in
      buildah | podman) "$builder" push --quiet "$ref" "docker://$ref" ;;
      docker) docker push --quiet "$ref" >/dev/null ;;
    esac
    log "  pushed $ref"
  fi
done
