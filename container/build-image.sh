#!/usr/bin/env bash
# `make image`: localhost/dvr-agent:latest from this checkout (container/Containerfile).
#
# No image registry is reachable here, so the Debian 12 base is made with debootstrap and
# `podman import`, once: it is cached as localhost/debian-minbase:bookworm and rebuilt only
# when missing. The package goes in as a wheel built from the checkout. A second run with
# nothing changed builds nothing new (every layer comes from podman's cache: the wheel is
# built with a fixed SOURCE_DATE_EPOCH, so the same sources give the same bytes), and what
# a rebuild leaves untagged is removed, so only the base and the project image remain.
# The podman options are those of ../shared/reference/privileged-containers.md: runc and
# cgroupfs (crun fails on this host's hybrid cgroups), explicit ulimits (the host's hard
# nofile limit, 20000, is below podman's default; 1024 is too few for a thousand OVS ports).
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${DVR_BASE_IMAGE:-localhost/debian-minbase:bookworm}
IMAGE=${DVR_IMAGE:-localhost/dvr-agent:latest}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PODMAN=(podman --runtime runc --cgroup-manager=cgroupfs)
ULIMITS=(--ulimit nofile=16384:16384 --ulimit nproc=4096:4096)
PYTHON=${PYTHON:-.venv/bin/python}
OUT=build/image

for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null || { echo "make image: $tool is missing (run \`make setup\`)" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "make image: run as root (debootstrap, privileged podman)" >&2; exit 2; }

if ! "${PODMAN[@]}" image exists "$BASE"; then
  echo "image: $BASE from debootstrap (once; cached)"
  rootfs=$(mktemp -d /var/tmp/dvr-debootstrap.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 \
    || { tail -20 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
  rm -f "$rootfs.log"
  tar -C "$rootfs" -c . | "${PODMAN[@]}" import --quiet - "$BASE" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
fi

# The wheels are built here, with this machine's pip (its index and certificates), and
# installed in the image from files: the build needs no Python index of its own. Debian 12's
# python3 is 3.11, so the wheels must be made by a 3.11 too.
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "make image: $PYTHON is not Python 3.11 (Debian 12's, the image's)" >&2; exit 2; }
echo "image: wheels of the checkout and its dependencies"
mkdir -p "$OUT/wheels" && rm -f "$OUT"/dvr_agent-*.whl
SOURCE_DATE_EPOCH=315532800 "$PYTHON" -m pip wheel --no-deps --wheel-dir "$OUT" . \
  >"$OUT/pip.log" 2>&1 || { tail -30 "$OUT/pip.log" >&2; exit 1; }
wheel=$(ls "$OUT"/dvr_agent-*.whl)
# the dependencies' wheels are made again only when the package's requirements change
requires=$("$PYTHON" -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
print("\n".join(l for l in z.read(meta).decode().splitlines() if l.startswith("Requires-Dist:")))
' "$wheel")
if [ "$requires" != "$(cat "$OUT/wheels/.requires" 2>/dev/null)" ]; then
  rm -rf "$OUT/wheels" && mkdir -p "$OUT/wheels"
  "$PYTHON" -m pip wheel --wheel-dir "$OUT/wheels" "$wheel[test]" >>"$OUT/pip.log" 2>&1 \
    || { tail -30 "$OUT/pip.log" >&2; exit 1; }
  rm "$OUT/wheels/$(basename "$wheel")"
  echo "$requires" > "$OUT/wheels/.requires"
fi
# exact versions, so that the dependency layer is rebuilt exactly when one of them changes
for w in "$OUT"/wheels/*.whl; do
  IFS=- read -r name version _ <<<"$(basename "$w")"; echo "$name==$version"
done | sort > "$OUT/requirements.txt"

echo "image: $IMAGE (podman build; cached layers are reused)"
"${PODMAN[@]}" build --network host "${ULIMITS[@]}" --build-arg "BASE=$BASE" \
  --build-arg "WHEEL=$(basename "$wheel")" -t "$IMAGE" -f container/Containerfile . \
  >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log" >&2; exit 1; }
# what a rebuild left untagged (the previous image, layers of an edited Containerfile): only
# images with our label, and only those nothing uses
"${PODMAN[@]}" image prune --force --filter label=io.dvr-agent.image=dvr-agent >/dev/null
new=$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$IMAGE")
echo "image: $IMAGE ${new:0:12} ($("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE" | numfmt --to=si)B)"
