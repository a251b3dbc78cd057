#!/usr/bin/env bash
# Prepares podman to build and run docker/Dockerfile on a machine without a Docker
# engine or registry access (see docs/deployment.md): a local debian:bookworm-slim base
# made with debootstrap, runc, host networking. Idempotent; the base is made once.
#
#   eval "$(scripts/container-env.sh)"     # exports CONTAINERS_CONF, CONTAINERS_STORAGE_CONF
#
# Prints the exports on stdout; progress and errors on stderr. Exit 1 when no
# container tool can work here (the container test then fails, saying why).
set -euo pipefail
W=${TIDEMARK_CONTAINER_DIR:-${TMPDIR:-/tmp}/tidemark-ctr}
mkdir -p "$W"

if ! command -v podman >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing podman, buildah, debootstrap, runc" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah debootstrap runc >&2
    else
        echo "podman is not installed and cannot be installed here (not root)" >&2
        exit 1
    fi
fi

cat > "$W/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
cat > "$W/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$W/storage"
runroot = "$W/run"
CONF
export CONTAINERS_CONF=$W/containers.conf CONTAINERS_STORAGE_CONF=$W/storage.conf

if ! podman image exists docker.io/library/debian:bookworm-slim 2>/dev/null; then
    if ! podman pull -q docker.io/library/debian:bookworm-slim >/dev/null 2>&1; then
        echo "making a local debian:bookworm-slim base with debootstrap (about a minute)" >&2
        mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
        rm -rf "$W/rootfs"
        if ! debootstrap --variant=minbase bookworm "$W/rootfs" "${mirror:-http://deb.debian.org/debian}" >"$W/debootstrap.log" 2>&1; then
            tail -5 "$W/debootstrap.log" >&2
            exit 1
        fi
        rm -rf "$W"/rootfs/var/cache/apt/archives/*.deb "$W"/rootfs/var/lib/apt/lists/*
        tar -C "$W/rootfs" -cf "$W/rootfs.tar" .
        podman import --change 'CMD ["/bin/bash"]' "$W/rootfs.tar" docker.io/library/debian:bookworm-slim >&2
        rm -rf "$W/rootfs" "$W/rootfs.tar"
    fi
fi
# The probe: a container must start and run a command here.
if ! probe=$(podman run --rm --network=host docker.io/library/debian:bookworm-slim true 2>&1); then
    echo "podman cannot run a container here: $probe" >&2
    exit 1
fi
echo "export CONTAINERS_CONF=$W/containers.conf CONTAINERS_STORAGE_CONF=$W/storage.conf"
