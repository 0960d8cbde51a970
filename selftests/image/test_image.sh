#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The built image (make image) without a container runtime: a working container's root,
# mounted by buildah, entered with chroot. ksteer must start there with the image's own
# libraries alone and read the scenario as it does on the host.
set -uo pipefail

KSTEER=${KSTEER:?path to the ksteer binary (the one the image was built from)}
SHARED=${SHARED:-../shared}
here=$(cd "$(dirname "$0")/../.." && pwd)
img() { OUT=${OUT:-$here/.output} bash "$here/scripts/image.sh" run "$@"; }
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; shift; printf '     %s\n' "$@"; }

v=$("$KSTEER" version | awk '{ print $2 }')
ctr=
cleanup() { [ -n "$ctr" ] && { img umount "$ctr" >/dev/null 2>&1; img rm "$ctr" >/dev/null 2>&1; }; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP # through the EXIT trap: the working container goes too

if ! ctr=$(img from --pull=never "localhost/ksteer:$v" 2>&1); then
	echo "FAIL the image localhost/ksteer:$v exists (make image)"
	printf '     %s\n' "$ctr"
	ctr=
	exit 1
fi
root=$(img mount "$ctr") && [ -x "$root/usr/local/bin/ksteer" ] && ok "container $ctr mounted at $root" ||
	{ bad "mount the container" "$root"; exit 1; }

# only the image's libraries: chroot sees nothing of the host's /usr
out=$(chroot "$root" /usr/local/bin/ksteer version 2>&1)
[ "$out" = "$("$KSTEER" version)" ] && ok "chroot: ksteer version: $out" ||
	bad "chroot: ksteer version" "got: $out" "want: $("$KSTEER" version)"
out=$(chroot "$root" /usr/bin/ldd /usr/local/bin/ksteer 2>&1)
if [ -n "$out" ] && ! grep -q "not found" <<<"$out"; then
	ok "chroot: ldd finds every library ($(grep -c '=>' <<<"$out") of them)"
else
	bad "chroot: ldd finds every library" "$out"
fi
chroot "$root" /usr/local/bin/ksteer agent --help >/dev/null 2>&1 && ok "chroot: ksteer agent --help" ||
	bad "chroot: ksteer agent --help" "exit $?"
# the libcurl the API watch client links is there for it
compgen -G "$root/usr/lib/*/libcurl.so.4" >/dev/null &&
	ok "libcurl.so.4 in the image" || bad "libcurl.so.4 in the image"

# the scenario's YAML, checked inside as outside
mkdir -p "$root/tmp/scenario" && cp -r "$SHARED/scenario/cluster1" "$SHARED/scenario/cluster2" "$root/tmp/scenario/"
for c in cluster1 cluster2; do
	in=$(chroot "$root" /usr/bin/env CLUSTER2_GW_ADDR=172.30.2.1 /usr/local/bin/ksteer check -n hello \
		-f "/tmp/scenario/$c/" 2>&1)
	rc=$?
	want=$(CLUSTER2_GW_ADDR=172.30.2.1 "$KSTEER" check -n hello -f "$SHARED/scenario/$c/" 2>&1)
	want=${want//$SHARED\/scenario/\/tmp\/scenario}
	[ "$rc" -eq 0 ] && [ "$in" = "$want" ] && ok "chroot: ksteer check $c: exit 0, the host's plan" ||
		bad "chroot: ksteer check $c" "exit $rc" "$(diff <(echo "$want") <(echo "$in") | head -n 10)"
done

# what the image says it runs
ep=$(img inspect --format '{{.OCIv1.Config.Entrypoint}}' "localhost/ksteer:$v" 2>&1)
[ "$ep" = "[/usr/local/bin/ksteer]" ] && ok "entrypoint $ep" || bad "entrypoint" "$ep"

echo "image: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
