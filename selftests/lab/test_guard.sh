#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The XDP guard on real links: a namespace outside the allowed networks cannot
# complete a TCP handshake to the gateway's 15443 while a peer gateway can, nor
# slip a SYN in as tiny fragments the stack would reassemble; its fragmented
# traffic to other ports still arrives; the counters say so, and an agent
# restart swaps the program inside the pinned link (never two attached)
# keeping the counters.
. "$(dirname "$0")/lib.sh"
need_root
scen=$SHARED/scenario

guard_cleanup() {
	for p in "${agents[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	"$KSTEER" uninstall --instance t-guard >/dev/null 2>&1
	ip netns del ksl-guard-out 2>/dev/null
	ip netns del ksl-guard-up 2>/dev/null
	rmdir "$cgdir" 2>/dev/null
}
agents=()
cg=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
cgdir=$cg/ksteer-guard-test
trap 'guard_cleanup; cleanup' EXIT

lab_fresh
eval "$("$KSTEER" lab env)"
for f in "$scen"/cluster2/*.yaml; do "$KSTEER" lab apply cluster2 -n hello -f "$f" >>"$tmp/apply" 2>&1 || bad "apply $f" "$(cat "$tmp/apply")"; done
"$KSTEER" status --instance lab-cluster2-gateway | grep -q "^guard wan (\(native\|generic\) XDP); [1-9][0-9]* allowed networks" &&
	ok "the gateway's uplink is guarded: $("$KSTEER" status --instance lab-cluster2-gateway | sed -n 's/^guard //p')" ||
	bad "guard status" "$("$KSTEER" status --instance lab-cluster2-gateway)"

# an outsider on the WAN, outside every network meshNetworks allows
ip netns add ksl-guard-out
ip link add veth0 netns ksl-guard-out type veth peer name out9 netns ksl-wan
ip -n ksl-wan link set out9 master br0 up
ip -n ksl-guard-out addr add 172.30.99.1/16 dev veth0
ip -n ksl-guard-out link set veth0 up
ip -n ksl-guard-out link set lo up

gstat() { "$KSTEER" get stats -i lab-cluster2-gateway -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
handshake() { # NETNS PORT: "connected", "refused" or "timeout"
	ip netns exec "$1" python3 - "$2" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(2)
try:
    s.connect(("172.30.2.1", int(sys.argv[1])))
    print("connected")
except ConnectionRefusedError:
    print("refused")
except OSError:
    print("timeout")
PY
}
d0=$(gstat guard_drop_denied) a0=$(gstat guard_pass_allowed)
r=$(handshake ksl-guard-out 15443)
d1=$(gstat guard_drop_denied)
[ "$r" = timeout ] && [ "$d1" -gt "$d0" ] &&
	ok "an outsider (172.30.99.1) cannot complete a handshake to 15443: SYNs dropped ($((d1 - d0)) counted)" ||
	bad "outsider to 15443" "$r" "drops $d0 -> $d1"
r=$(handshake ksl-guard-out 9)
[ "$r" = refused ] && ok "the outsider reaches other ports (port 9 answers RST): only mesh ports are guarded" ||
	bad "outsider to port 9" "$r"
r=$(handshake ksl-c1-gw 15443)
a1=$(gstat guard_pass_allowed)
[ "$r" = connected ] && [ "$a1" -gt "$a0" ] &&
	ok "cluster1's gateway (an allowed peer) completes the handshake ($((a1 - a0)) packets passed as allowed)" ||
	bad "peer to 15443" "$r" "allowed $a0 -> $a1"
# -- fragments: the stack reassembles them, so the guard judges the first and fails closed
fragsyn() { # NETNS PORT tiny|whole|later: prints synack, rst or none
	ip netns exec "$1" python3 - "$2" "$3" <<'PY'
import os, random, socket, struct, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
dst = "172.30.2.1"
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
probe.connect((dst, 9))
src = probe.getsockname()[0]
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
sport, ident = random.randint(20000, 60000), random.randint(1, 65535)
payload = b"fragment"  # 28 bytes of TCP: 24 (whole 8-byte units) in the first, 4 later
tcp = struct.pack("!HHIIBBHHH", sport, port, random.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0) + payload
pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
def ip(data, off8, more):
    # the kernel fills in the total length and checksum (raw(7), IP_HDRINCL)
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(data), ident, (0x2000 if more else 0) | off8,
                       64, 6, 0, socket.inet_aton(src), socket.inet_aton(dst)) + data
cut = 8 if mode == "tiny" else 24  # 8: RFC 1858 offset 1 follows
frags = [ip(tcp[:cut], 0, True), ip(tcp[cut:], cut // 8, False)]
if mode == "later":
    frags = frags[1:]  # a later fragment whose first never came
rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for f in frags:
    tx.sendto(f, (dst, 0))
rx.settimeout(0.2)
end = time.time() + 2
while time.time() < end:
    try:
        b = rx.recv(2048)
    except socket.timeout:
        continue
    hl = (b[0] & 15) * 4
    sp, dp = struct.unpack("!HH", b[hl:hl + 4])
    if socket.inet_ntoa(b[12:16]) == dst and sp == port and dp == sport:
        print("synack" if b[hl + 13] & 0x12 == 0x12 else "rst" if b[hl + 13] & 4 else "other")
        sys.exit(0)
print("none")
PY
}
c0=$(gstat guard_pass_fragment)
r=$(fragsyn ksl-guard-out 9 whole)
c1=$(gstat guard_pass_fragment)
[ "$r" = rst ] && [ "$c1" -gt "$c0" ] &&
	ok "an outsider's fragmented SYN to another port (whole TCP header first) is reassembled and answered (RST); its later fragment passed" ||
	bad "outsider's fragmented SYN to port 9" "$r" "fragments passed $c0 -> $c1"
c0=$(gstat guard_drop_first_cut)
r=$(fragsyn ksl-guard-out 15443 tiny)
c1=$(gstat guard_drop_first_cut)
[ "$r" = none ] && [ "$c1" -gt "$c0" ] &&
	ok "a tiny-fragment SYN (8 bytes of TCP first, RFC 1858) from the outsider to 15443 gets no answer: first fragment dropped" ||
	bad "outsider's tiny-fragment SYN to 15443" "$r" "first_cut $c0 -> $c1"
c0=$(gstat guard_drop_later)
r=$(fragsyn ksl-guard-out 15443 later)
c1=$(gstat guard_drop_later)
[ "$r" = none ] && [ "$c1" -gt "$c0" ] &&
	ok "a later fragment from the outsider whose first never came is dropped ($((c1 - c0)) counted)" ||
	bad "outsider's orphan later fragment" "$r" "later drops $c0 -> $c1"
r=$(fragsyn ksl-guard-out 15443 whole)
[ "$r" = none ] && ok "a fragmented SYN to 15443 with the whole header first is dropped as any other from the outsider" ||
	bad "outsider's fragmented SYN to 15443" "$r"
r=$(fragsyn ksl-c1-gw 15443 tiny)
[ "$r" = synack ] && ok "the peer gateway's tiny-fragment SYN to 15443 is reassembled and answered: allowed networks pass" ||
	bad "peer's tiny-fragment SYN to 15443" "$r"

bpftool map dump pinned /sys/fs/bpf/ksteer/lab-cluster2-gateway/ks_guard_allow >"$tmp/allow" 2>&1 &&
	grep -q '"prefixlen": 128' "$tmp/allow" && ok "bpftool reads the allowed networks (LPM trie, BTF)" ||
	bad "bpftool map dump" "$(head -5 "$tmp/allow")"
# by name too: map names fit the kernel's 15 characters (ksteer_guard_stats did not)
bpftool map dump name ks_guard_stats >"$tmp/gs" 2>&1 && grep -q "key" "$tmp/gs" &&
	ok "bpftool map dump name ks_guard_stats" || bad "bpftool map dump name ks_guard_stats" "$(head -5 "$tmp/gs")"

# -- upgrade: a new agent swaps its program into the pinned XDP link
ip netns add ksl-guard-up
ip -n ksl-guard-up link add v0 type veth peer name v1
ip -n ksl-guard-up link set v0 up
ip -n ksl-guard-up link set v1 up
mkdir -p "$cgdir" "$tmp/gp"
start() {
	"$KSTEER" agent --instance t-guard --cgroup ksteer-guard-test --policy "$tmp/gp" --netns ksl-guard-up \
		--no-dns --xdp-dev v0 --allow 10.9.0.0/16 --ready-file "$tmp/g.ready" >"$tmp/g.log" 2>&1 &
	agents+=($!)
	for _ in $(seq 100); do [ -e "$tmp/g.ready" ] && return 0; sleep 0.05; done
	return 1
}
xdp_ids() { ip netns exec ksl-guard-up bpftool -j net show dev v0 | python3 -c '
import json, sys
x = json.load(sys.stdin)[0]["xdp"]
print(len(x), " ".join(str(p["id"]) for p in x))'; }
link_id() { bpftool -j link show pinned /sys/fs/bpf/ksteer/t-guard/link_xdp_v0 | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
# a counters map pinned by an older guard, with fewer counters, is replaced rather than refused
mkdir -p /sys/fs/bpf/ksteer/t-guard
bpftool map create /sys/fs/bpf/ksteer/t-guard/ks_guard_stats type percpu_array key 4 value 8 \
	entries 6 name ks_guard_stats
rm -f "$tmp/g.ready"
start || bad "guard agent starts" "$(cat "$tmp/g.log")"
n=$(bpftool -j map show pinned /sys/fs/bpf/ksteer/t-guard/ks_guard_stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["max_entries"])')
[ "$n" -gt 6 ] && ok "a counters map pinned by an older guard (6 counters) is replaced ($n now)" ||
	bad "older pinned counters map" "$n entries" "$(cat "$tmp/g.log")"
read -r n1 p1 <<<"$(xdp_ids)"
l1=$(link_id)
kill "${agents[-1]}" && wait "${agents[-1]}" 2>/dev/null
read -r n2 _ <<<"$(xdp_ids)"
[ "$n2" = 1 ] && ok "the guard stays attached while its agent is down" || bad "guard after agent exit" "$n2"
rm -f "$tmp/g.ready"
start || bad "guard agent restarts" "$(cat "$tmp/g.log")"
read -r n3 p3 <<<"$(xdp_ids)"
l3=$(link_id)
[ "$n1" = 1 ] && [ "$n3" = 1 ] && [ "$l1" = "$l3" ] && [ "$p1" != "$p3" ] &&
	ok "upgrade: the new program replaced the old inside link $l1 (program $p1 -> $p3), one attached throughout" ||
	bad "upgrade" "before: $n1 programs ($p1) link $l1; after: $n3 ($p3) link $l3"
kill "${agents[-1]}" && wait "${agents[-1]}" 2>/dev/null
"$KSTEER" uninstall --instance t-guard >/dev/null 2>&1
read -r n4 _ <<<"$(xdp_ids)"
[ "$n4" = 0 ] && ok "uninstall detaches the guard" || bad "uninstall" "$n4 attached"
finish
