#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# What ksteer does today with the reference scenario: each cluster's policies,
# exactly as ../shared/scenario has them, compiled into the plan the kernel and
# the shim will run.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
scen=$SHARED/scenario

# An address for cluster2's gateway, as `ksteer lab env` will print it.
export CLUSTER2_GW_ADDR=${CLUSTER2_GW_ADDR:-172.30.2.2}

echo "== cluster1: ksteer check -n hello -f $scen/cluster1/  (CLUSTER2_GW_ADDR=$CLUSTER2_GW_ADDR)"
./ksteer check -n hello -f "$scen/cluster1/"
echo
echo "== cluster2: ksteer check -n hello -f $scen/cluster2/"
./ksteer check -n hello -f "$scen/cluster2/"
echo
echo "== a bad policy is refused whole, with file:line:col"
bad=$(mktemp)
trap 'rm -f "$bad"' EXIT
sed 's/weight: 30/weight: -30/' "$scen/cluster1/04-virtualservice.yaml" >"$bad"
if ./ksteer check -n hello -f "$bad"; then
	echo "Error: the bad policy was accepted" >&2
	exit 1
fi
