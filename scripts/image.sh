#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The ksteer image, with buildah and no registry and no container runtime:
#   image.sh build        Debian 12 base (mmdebstrap, from this machine's apt sources; made
#                         once and kept), then the Containerfile on it, chroot isolation
#   image.sh push DEST    buildah push to DEST (docker://REGISTRY/ksteer:TAG, oci-archive:FILE...)
#   image.sh run CMD...   buildah with this store's options (images, inspect, rm...)
# Images live in their own store under $OUT/image (vfs driver: no overlay mounts needed), so
# the machine's own container storage and its configuration are never touched.
set -euo pipefail

OUT=$(realpath -m "${OUT:-.output}")
dir=$OUT/image
B=(buildah --root "$dir/storage" --runroot "$dir/run" --storage-driver vfs)
BASE=localhost/ksteer-base:bookworm
# every step is bounded: a stalled mirror fails the build instead of hanging it
STEP_TIMEOUT=${STEP_TIMEOUT:-1200}

version() { "$OUT/ksteer" version | awk '{ print $2 }'; }

base() {
	local tar=$dir/bookworm-slim.tar c m
	if ! "${B[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
		if [ ! -s "$tar" ]; then
			echo "image: Debian 12 minbase from $(ls /etc/apt/sources.list.d/debian.sources 2>/dev/null || echo deb.debian.org) (once; kept in $tar)"
			# as debian:bookworm-slim: minbase, no documentation, manuals or translations
			timeout "$STEP_TIMEOUT" mmdebstrap --quiet --variant=minbase --mode=root --format=tar \
				--aptopt='Acquire::Languages "none"' \
				--dpkgopt='path-exclude=/usr/share/doc/*' \
				--dpkgopt='path-include=/usr/share/doc/*/copyright' \
				--dpkgopt='path-exclude=/usr/share/man/*' \
				--dpkgopt='path-exclude=/usr/share/info/*' \
				--dpkgopt='path-exclude=/usr/share/locale/*' \
				bookworm "$tar.tmp" \
				$(ls /etc/apt/sources.list.d/debian.sources 2>/dev/null) >"$dir/mmdebstrap.log" 2>&1 || {
				tail -n 20 "$dir/mmdebstrap.log" >&2
				rm -f "$tar.tmp"
				echo "Error: mmdebstrap bookworm failed; see $dir/mmdebstrap.log" >&2
				return 1
			}
			mv "$tar.tmp" "$tar"
		fi
		c=$("${B[@]}" from scratch)
		# an interrupted import leaves no working container behind
		trap '"${B[@]}" rm "$c" >/dev/null 2>&1' EXIT
		trap 'exit 1' INT TERM HUP
		m=$("${B[@]}" mount "$c")
		if ! tar -C "$m" -xf "$tar" || ! "${B[@]}" commit --quiet --rm "$c" "$BASE" >/dev/null; then
			echo "Error: import $tar as $BASE" >&2
			return 1
		fi
		trap - EXIT
	fi
}

build() {
	local v ctx=$dir/context
	v=$(version)
	mkdir -p "$ctx"
	base
	# the context is the binary alone: nothing else of the tree goes into the image
	install -m 0755 -s "$OUT/ksteer" "$ctx/ksteer"
	timeout "$STEP_TIMEOUT" "${B[@]}" bud --quiet --isolation chroot --pull=never \
		--build-arg BASE="$BASE" \
		--label org.opencontainers.image.title=ksteer \
		--label org.opencontainers.image.version="$v" \
		-f Containerfile -t "localhost/ksteer:$v" "$ctx" >/dev/null
	# the image this one replaced (another binary), untagged now, is of no use
	"${B[@]}" rmi --prune >/dev/null 2>&1 || true
	echo "image: localhost/ksteer:$v ($("${B[@]}" images --format '{{.Size}}' "localhost/ksteer:$v"))"
}

case ${1:-} in
build) build ;;
push)
	[ $# -eq 2 ] || { echo "Usage: image.sh push DEST (e.g. docker://registry.example/ksteer:$(version))" >&2; exit 2; }
	"${B[@]}" push "localhost/ksteer:$(version)" "$2"
	;;
run)
	shift
	"${B[@]}" "$@"
	;;
*)
	echo "Usage: image.sh build | push DEST | run BUILDAH-ARGS..." >&2
	exit 2
	;;
esac
