#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Installs the Debian packages ksteer needs; quiet and quick when all are there.
set -euo pipefail

pkgs=(
	make gcc clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config
	libyaml-dev libjansson-dev libssl-dev libcmocka-dev node-llhttp libclang-rt-14-dev python3 util-linux
	iproute2 curl nftables libmicrohttpd-dev libldns-dev tcpdump bind9-dnsutils openssl
	slowhttptest scdoc prometheus libcurl4-openssl-dev
)
# the cli tests render manifests/deploy with kubectl's kustomize: Debian's where none is installed
command -v kubectl >/dev/null || pkgs+=(kubernetes-client)
# `deps.sh bench`: what `make bench` adds (its baselines and load generators)
[ "${1:-}" = bench ] && pkgs+=(iptables iperf3 wrk)
# `deps.sh image`: what `make image` adds: buildah (vfs storage, chroot isolation: no container
# runtime needed) and mmdebstrap for the Debian 12 base, made from this machine's apt mirror
[ "${1:-}" = image ] && pkgs+=(buildah mmdebstrap)

# `deps.sh kernels`: what `make test-kernels` adds (qemu and the guest's busybox init); the
# kernels themselves are fetched with `apt-get download`, never installed on the host
[ "${1:-}" = kernels ] && pkgs+=(qemu-system-x86 busybox-static cpio)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "Error: missing packages: ${missing[*]}; run 'make deps' as root" >&2
	exit 1
fi
echo "Installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >/tmp/ksteer-deps.log 2>&1; then
	apt-get update -q >>/tmp/ksteer-deps.log 2>&1 || true
	apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >>/tmp/ksteer-deps.log 2>&1 || {
		echo "Error: apt-get install failed; see /tmp/ksteer-deps.log" >&2
		tail -n 20 /tmp/ksteer-deps.log >&2
		exit 1
	}
fi
