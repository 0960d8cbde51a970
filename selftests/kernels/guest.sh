#!/bin/bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# PID 1 of a test-kernels guest: mounts what ksteer needs, probes the kernel, loads every
# object through the agent, runs the unit and lab tests; one row per feature or test goes to
# the second serial port (ttyS1) for run.sh, the tests' output to the console; powers off.
set -u
conf=$(sed -n 's/.*ksteer\.conf=\([^ ]*\).*/\1/p' /proc/cmdline)
# TOP OUT SHARED MODULES LAB_TESTS PATH TEST_TIMEOUT, written by run.sh
. "$conf" || { echo "guest: no config $conf"; exec /bin/busybox poweroff -f; }
export PATH HOME=/root KSTEER_SHARED=$SHARED

row() { printf 'R\t%s\t%s\t%s\n' "$1" "$2" "${3:-}" >/dev/ttyS1; }
log() { echo "== guest: $(cut -d" " -f1 /proc/uptime) s: $*"; }

mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
/bin/busybox stty -F /dev/ttyS1 raw -echo 2>/dev/null
hostname kernels-guest
ip link set lo up
# the unpacked package's modules: the kernel loads veth, nf_tables... on demand
mkdir -p /lib/modules /run/ksteer-kernels
ln -sfn "$MODULES" "/lib/modules/$(uname -r)"
ln -s /bin/busybox /run/ksteer-kernels/modprobe
echo /run/ksteer-kernels/modprobe >/proc/sys/kernel/modprobe
row "kernel" ok "$(uname -r)"

# Each check runs bounded; its output goes to the console between markers.
run() { # NAME CMD...
	local name=$1 rc
	shift
	log "begin $name"
	timeout -k 5 "$TEST_TIMEOUT" "$@" </dev/null 2>&1
	rc=$?
	log "end $name rc=$rc"
	return $rc
}

# Features the objects use, by bpftool's probe.
if bpftool feature probe kernel -j >/tmp/probe.json 2>/tmp/probe.err; then
	python3 "$TOP/selftests/kernels/features.py" /tmp/probe.json "$TOP/vmlinux.h" "$MAPTYPES" \
		"$OUT"/*.bpf.o >/tmp/features || row "probe" FAIL "features.py failed"
	while IFS=$'\t' read -r f s d; do row "$f" "$s" "$d"; done </tmp/features
else
	row "probe" FAIL "bpftool feature probe: $(tail -n 1 /tmp/probe.err)"
fi
[ -e /sys/kernel/btf/vmlinux ] && row "probe: BTF (/sys/kernel/btf/vmlinux)" ok ||
	row "probe: BTF (/sys/kernel/btf/vmlinux)" missing

# Every object through the agent's own load path: sock (cgroup hooks, sockops, sk_msg on
# the sockhash, sk_skb on the splice map) and the XDP guard (generic XDP on a veth).
load_agent() {
	local d=/tmp/load st pid i t0
	mkdir -p $d/policy /sys/fs/cgroup/kt-agent /sys/fs/cgroup/kt-apps
	ip link add kt0 type veth peer name kt1 && ip link set kt0 up && ip link set kt1 up ||
		{ row "load: veth for the guard" FAIL "ip link add veth failed"; return; }
	bash -c 'echo $$ >/sys/fs/cgroup/kt-agent/cgroup.procs && exec "$@"' _ \
		"$OUT/ksteer" agent -i kt --policy $d/policy --cgroup kt-apps --ready-file $d/ready \
		--sockmap on --splice on --xdp-dev kt0 --xdp-mode generic >$d/agent.log 2>&1 &
	pid=$!
	t0=$(cut -d" " -f1 /proc/uptime)
	for ((i = 0; i < 600; i++)); do
		[ -e $d/ready ] && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	st=$("$OUT/ksteer" status -i kt 2>&1)
	echo "$st"
	if [ -e $d/ready ] && echo "$st" | grep -q '^datapath'; then
		row "load: ksteer_sock (agent)" ok "ready in $(awk -v t="$t0" '{ print $1 - t }' /proc/uptime) s"
		for k in guard sockmap splice; do
			local v
			v=$(echo "$st" | sed -n "s/^$k //p")
			case $v in
			off*) row "load: $k" FAIL "$v" ;;
			"") row "load: $k" FAIL "no '$k' line in ksteer status" ;;
			*) row "load: $k" ok "$v" ;;
			esac
		done
	else
		row "load: ksteer_sock (agent)" FAIL "$(grep -m1 -iE 'error|fail' $d/agent.log)"
	fi
	cat $d/agent.log
	kill $pid 2>/dev/null
	wait $pid
	"$OUT/ksteer" uninstall -i kt
	ip link del kt0
	rmdir /sys/fs/cgroup/kt-agent /sys/fs/cgroup/kt-apps
}
log "begin load"
load_agent 2>&1
log "end load"

for t in "$OUT"/unit/test_*; do
	[ -x "$t" ] || continue
	n=$(basename "$t")
	if run "$n" "$t"; then row "unit: $n" ok; else row "unit: $n" FAIL "rc=$?"; fi
done

# the socket programs one by one (selftests/bpf): rewrites, getpeername, counters on this kernel
for t in "$OUT"/bpftest/test_*; do
	[ -x "$t" ] || continue
	n=$(basename "$t")
	if run "$n" "$t"; then row "bpf: $n" ok; else row "bpf: $n" FAIL "rc=$?"; fi
done

for t in $LAB_TESTS; do
	run "$t" env KSTEER="$OUT/ksteer" SHARED="$SHARED" bash "$TOP/selftests/lab/$t" |
		tee /tmp/lab.out
	rc=${PIPESTATUS[0]}
	sum=$(grep -E "^$t: [0-9]+ passed" /tmp/lab.out | tail -n 1)
	if [ "$rc" -eq 0 ]; then
		row "lab: $t" ok "${sum#"$t: "}"
	else
		row "lab: $t" FAIL "rc=$rc ${sum#"$t: "}; $(grep -m1 '^FAIL' /tmp/lab.out)"
	fi
done

row END ok
sync
exec /bin/busybox poweroff -f
