#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The README's examples, run: every command line of its code blocks that names
# no placeholder (NAME, DIR, [options], a|b...) is executed, in the README's
# order, in a lab holding the scenario and tcp-echo; each must exit 0. Lines
# that cannot run here say why in the table below; synopsis lines are the CLI
# tests' (every flag they name is in the command's --help).
. "$(dirname "$0")/lib.sh"
need_root
cd "$TOP"

# the lines, joined across backslashes, "LINE<TAB>COMMAND"
python3 - README.md >"$tmp/lines" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().split("\n")
placeholder = re.compile(r"\b(NAME|DIR|PATH|FILE|CLUSTER|NS|SELECTOR|CMD|LABFILE|ADDR|DEST|URL|REGISTRY|TAG|METHOD|IFNAME|CIDR)\b|\[|\]|\.\.\.|\|")
i = 0
while i < len(lines):
    l, n = lines[i], i + 1
    if l.startswith("    ") and not l.startswith("     "):
        t = l[4:]
        t = t[2:] if t.startswith("$ ") else t
        while t.endswith("\\") and i + 1 < len(lines):
            i += 1
            t = t[:-1] + " " + lines[i].strip()
        t = re.sub(r"\s+#.*$", "", t).strip()
        if re.match(r"(\S+=\S+ )*(\./)?(ksteer|bpftool|kubectl|eval) ", t) and not placeholder.search(t.replace('"$(ksteer lab env)"', "")):
            print(f"{n}\t{t}")
    i += 1
PY

# why a line is not run as it is (a pattern of the command, the reason)
skip() {
	case "$1" in
	"ksteer lab up" | "ksteer lab down") echo "the test brings the lab up and down itself" ;;
	*"get pods -n hello -w"*) echo "watches until interrupted: run below with a timeout" ;;
	*"apply -k my-cluster1/"* | *"create namespace ksteer-system"* | *"create secret generic cacerts"*)
		echo "installs on a real cluster, with the user's overlay (the lab installs manifests/deploy itself)" ;;
	*"cert intermediate --root ca/root"*) echo "needs the root its neighbour line makes: run below" ;;
	*"create namespace hello"*) echo "the test's scenario made it already (AlreadyExists): run below in a fresh one" ;;
	*) return 1 ;;
	esac
}

lab_fresh
scenario_kit "$tmp/kit"
scenario_apply "$tmp/kit" cluster1 cluster2 hello service=helloworld version=v1 version=v2 version=v3 &&
	"$KSTEER" lab apply cluster1 -n hello -f "$EX/tcp-echo.yaml" >>"$tmp/apply" 2>&1 &&
	ok "lab up, the scenario and tcp-echo applied" || bad "apply" "$(cat "$tmp/apply")"
export HOME=$tmp # kubectl's cache

n=0
while IFS=$'\t' read -r line cmd; do
	if why=$(skip "$cmd"); then
		echo "     README:$line not run: $why: $cmd"
		continue
	fi
	n=$((n + 1))
	# the README's ksteer is the one under test; ../shared is $SHARED
	run=$(sed -E "s#(^|[ =(\"])(\./)?ksteer #\1$KSTEER #g; s#\.\./shared/#$SHARED/#g" <<<"$cmd")
	if timeout 60 bash -c "set -e; eval \"\$(\"$KSTEER\" lab env)\"; $run" >"$tmp/out" 2>&1; then
		ok "README:$line $cmd"
	else
		bad "README:$line $cmd" "exit $?: $(head -c 400 "$tmp/out")"
	fi
done <"$tmp/lines"
[ "$n" -ge 10 ] && ok "$n README lines run" || bad "README lines found" "only $n: $(cat "$tmp/lines")"

# the two the table sends here
timeout 3 kubectl --context cluster1 get pods -n hello -w >"$tmp/w" 2>&1
[ $? -eq 124 ] && grep -q sleep-0 "$tmp/w" && ok "README: kubectl get pods -n hello -w lists and keeps watching" ||
	bad "README: kubectl get pods -w" "$(cat "$tmp/w")"
kubectl --context cluster1 create namespace hello2 >"$tmp/ns" 2>&1 && ok "README: kubectl create namespace (hello2)" ||
	bad "README: kubectl create namespace" "$(cat "$tmp/ns")"
(cd "$tmp" && mkdir ca && "$KSTEER" cert root --out ca/root >/dev/null &&
	"$KSTEER" cert intermediate --root ca/root --out ca/cluster1 --cluster cluster1 >/dev/null &&
	ls ca/cluster1/ca-cert.pem ca/cluster1/ca-key.pem ca/cluster1/root-cert.pem ca/cluster1/cert-chain.pem) >"$tmp/cert.out" 2>&1 &&
	ok "README: ksteer cert root, then cert intermediate: the cacerts files" || bad "README: cert" "$(cat "$tmp/cert.out")"
finish
