#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# make test-kernels: boots Debian's stock kernels under qemu, each with the host's root
# (read-only, virtiofs) under a tmpfs overlay, runs guest.sh there and prints kernel x feature.
# The kernel packages are unpacked under $OUT/kernels, never installed on the host.
set -uo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=$(cd "${OUT:-$TOP/.output}" && pwd)
SHARED=$(cd "${SHARED:-$TOP/../shared}" && pwd)
CACHE=$OUT/kernels
# Debian's cloud kernels: bookworm's 6.1 and, where apt offers it, 6.12 (package names)
KERNELS=${KERNELS:-}
LAB_DEFAULT="test_l4.sh test_guard.sh test_shim.sh test_shim_nosockmap.sh"
LAB_SKIPPED= # the default lab tests when there is no KVM and LAB_TESTS was not given
if [ -z "${LAB_TESTS+set}" ] && [ ! -w /dev/kvm ]; then
	LAB_TESTS=
	LAB_SKIPPED=$LAB_DEFAULT
fi
LAB_TESTS=${LAB_TESTS-$LAB_DEFAULT}
MEM=${MEM:-3G}
TEST_TIMEOUT=${TEST_TIMEOUT:-900}   # one test inside the guest, seconds
BOOT_TIMEOUT=${BOOT_TIMEOUT:-3600}  # one guest, boot to power-off, seconds

run=$(mktemp -d "$CACHE.run.XXXXXX") || exit 1
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "Error: $*" >&2
	exit 1
}

# The ABI packages the meta-packages point at, e.g. linux-image-6.1.0-56-cloud-amd64.
default_kernels() {
	local meta
	for meta in linux-image-cloud-amd64 linux-image-6.12-cloud-amd64; do
		apt-cache depends "$meta" 2>/dev/null |
			sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n 1
	done
}

# Unpacks a kernel package into $CACHE/PKG once: vmlinuz, config, modules (decompressed, with
# busybox's modules.dep, so busybox modprobe finds them).
kernel_fetch() { # PKG
	local pkg=$1 d=$CACHE/$1 ver
	[ -e "$d/.done" ] && return 0
	rm -rf "$d" && mkdir -p "$d/deb" || return 1
	(cd "$d/deb" && apt-get download -q "$pkg" >/dev/null 2>&1) || {
		echo "Error: apt-get download $pkg failed" >&2
		return 1
	}
	dpkg-deb -x "$d"/deb/*.deb "$d" || return 1
	rm -rf "$d/deb"
	ver=$(basename "$d"/lib/modules/*)
	find "$d/lib/modules/$ver" -name '*.ko.xz' -exec xz -d {} + || return 1
	busybox depmod -b "$d" "$ver" || return 1
	touch "$d/.done"
}

# The initramfs: static busybox, init, and the modules init loads (those not built in).
initramfs_build() { # PKG OUTFILE
	local d=$CACHE/$1 ir=$run/initramfs-$1 ver m line f
	ver=$(basename "$d"/lib/modules/*)
	mkdir -p "$ir"/{bin,proc,sys,dev,lower,upper,newroot,lib/modules/$ver} || return 1
	cp /bin/busybox "$ir/bin/busybox" && cp "$TOP/selftests/kernels/init" "$ir/init" || return 1
	chmod 755 "$ir/init"
	: >"$ir/modules"
	for m in virtio_pci virtiofs overlay; do
		grep -q "/$m\.ko$" "$d/lib/modules/$ver/modules.builtin" && continue
		line=$(grep "/$m\.ko:" "$d/lib/modules/$ver/modules.dep") || {
			echo "Error: $1 has no module $m" >&2
			return 1
		}
		echo "$line" >>"$ir/lib/modules/$ver/modules.dep"
		for f in ${line/:/}; do
			mkdir -p "$ir/lib/modules/$ver/$(dirname "$f")"
			cp "$d/lib/modules/$ver/$f" "$ir/lib/modules/$ver/$f" || return 1
		done
		echo "$m" >>"$ir/modules"
	done
	(cd "$ir" && find . | cpio -o -H newc --quiet) | gzip -1 >"$2"
}

# Boots one kernel; its rows go to $run/PKG.rows, its console to $CACHE/PKG.console.
boot() { # PKG
	local pkg=$1 d=$CACHE/$1 ver sock=$run/$1.vfs vpid qpid accel rc
	ver=$(basename "$d"/lib/modules/*)
	initramfs_build "$pkg" "$run/$pkg.cpio.gz" || return 1
	cat >"$run/$pkg.conf" <<-EOF
		TOP='$TOP'
		OUT='$OUT'
		SHARED='$SHARED'
		MODULES='$d/lib/modules/$ver'
		MAPTYPES='$run/maptypes'
		LAB_TESTS='$LAB_TESTS'
		TEST_TIMEOUT='$TEST_TIMEOUT'
		PATH='$PATH'
	EOF
	/usr/lib/qemu/virtiofsd --socket-path="$sock" -o source=/ -o cache=auto \
		-o sandbox=chroot >"$run/$pkg.virtiofsd.log" 2>&1 &
	vpid=$!
	pids+=("$vpid")
	for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
	[ -S "$sock" ] || { echo "Error: virtiofsd did not start" >&2; cat "$run/$pkg.virtiofsd.log" >&2; return 1; }
	if [ -w /dev/kvm ]; then
		accel=(-accel kvm -cpu host)
	else
		accel=(-accel tcg,thread=multi -cpu max)
	fi
	: >"$run/$pkg.rows"
	timeout -k 10 "$BOOT_TIMEOUT" qemu-system-x86_64 -nodefaults -display none -no-reboot \
		-machine q35 "${accel[@]}" -smp 2 -m "$MEM" \
		-object memory-backend-memfd,id=mem,size="$MEM",share=on -numa node,memdev=mem \
		-chardev socket,id=vfs,path="$sock" -device vhost-user-fs-pci,chardev=vfs,tag=hostroot \
		-serial file:"$CACHE/$pkg.console" -serial file:"$run/$pkg.rows" \
		-kernel "$d/boot/vmlinuz-$ver" -initrd "$run/$pkg.cpio.gz" \
		-append "console=ttyS0 panic=-1 loglevel=4 ksteer.guest=$TOP/selftests/kernels/guest.sh ksteer.conf=$run/$pkg.conf" &
	qpid=$!
	pids+=("$qpid")
	wait "$qpid"
	rc=$?
	kill "$vpid" 2>/dev/null
	wait "$vpid" 2>/dev/null
	grep -q "^R	END	" "$run/$pkg.rows" || {
		echo "Error: $pkg: the guest did not finish (qemu rc=$rc); console: $CACHE/$pkg.console" >&2
		printf 'R\tguest finished\tFAIL\tqemu rc=%s\n' "$rc" >>"$run/$pkg.rows"
	}
	return 0
}

[ -e /usr/lib/qemu/virtiofsd ] && command -v qemu-system-x86_64 >/dev/null ||
	die "qemu is missing: scripts/deps.sh kernels"
[ -x "$OUT/ksteer" ] || die "no $OUT/ksteer: make first"
if [ ! -w /dev/kvm ]; then
	echo "Warning: no /dev/kvm: the guests run under TCG (emulation), tens of times slower" >&2
	[ -z "$LAB_SKIPPED" ] ||
		echo "Warning: lab tests skipped under TCG (test_l4's 1000 curls alone take over 15 min): LAB_TESTS='...' to run them anyway, LAB_TESTS= to not ask" >&2
fi
mkdir -p "$CACHE"
[ -n "$KERNELS" ] || KERNELS=$(default_kernels)
[ -n "$KERNELS" ] || die "apt offers no linux-image-*-cloud-amd64 here"
grep -rhoE 'BPF_MAP_TYPE_[A-Z_]+' "$TOP/bpf" "$TOP/maps" | sort -u | sed 's/BPF_MAP_TYPE_//' |
	tr 'A-Z' 'a-z' >"$run/maptypes"

for k in $KERNELS; do
	t0=$(date +%s)
	echo "== $k"
	kernel_fetch "$k" || die "fetch $k"
	boot "$k" || die "boot $k"
	for t in $LAB_SKIPPED; do
		printf 'R\tlab: %s\tskip\tno /dev/kvm\n' "$t" >>"$run/$k.rows"
	done
	echo "== $k: $(($(date +%s) - t0)) s; console in $CACHE/$k.console"
done

# kernel x feature: one column per kernel; ok, FAIL or missing (the probe's name is the row's)
python3 - "$run" $KERNELS <<'PY'
import sys
run, kernels = sys.argv[1], sys.argv[2:]
rows, cells, bad, skipped = [], {}, 0, 0
for k in kernels:
    for line in open(f"{run}/{k}.rows", errors="replace"):
        p = line.rstrip("\r\n").split("\t")
        if len(p) < 3 or p[0] != "R" or p[1] == "END":
            continue
        f, s, d = p[1], p[2], p[3] if len(p) > 3 else ""
        if f not in rows:
            rows.append(f)
        cells[f, k] = s if f != "kernel" else d
        if s == "ok" and d and f.startswith("load:"):
            print(f"{k}: {f}: {d}")
        if s == "skip":
            skipped += 1
        elif s != "ok":
            bad += 1
            print(f"{k}: {f}: {s} {d}".rstrip())
short = [k.replace("linux-image-", "") for k in kernels]
w = max(len(f) for f in rows) if rows else 10
print(f"{'feature':<{w}}  " + "  ".join(f"{s:<26}" for s in short))
for f in rows:
    print(f"{f:<{w}}  " + "  ".join(f"{cells.get((f, k), '-'):<26}" for k in kernels))
if bad:
    print(f"test-kernels: {bad} failed or missing, {skipped} skipped")
    sys.exit(1)
if skipped:
    print(f"test-kernels: incomplete, {skipped} skipped (see the warnings above)")
    sys.exit(2)
print("test-kernels: all passed")
PY
