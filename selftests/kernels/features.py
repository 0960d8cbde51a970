#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Which kernel features ksteer's BPF objects use, checked against `bpftool feature probe -j`:
# program types from the objects' sections, helpers from their call instructions (per
# program type), map types from the sources. Prints "feature<TAB>ok|missing<TAB>detail".
import json
import re
import subprocess
import sys

# libbpf section name (prefix) -> bpftool's program type name
SECTIONS = [
    ("cgroup/connect", "cgroup_sock_addr"), ("cgroup/getpeername", "cgroup_sock_addr"),
    ("cgroup/getsockname", "cgroup_sock_addr"), ("cgroup/sendmsg", "cgroup_sock_addr"),
    ("cgroup/recvmsg", "cgroup_sock_addr"), ("cgroup/bind", "cgroup_sock_addr"),
    ("sockops", "sock_ops"), ("sk_msg", "sk_msg"), ("sk_skb", "sk_skb"), ("xdp", "xdp"),
]


def helper_names(vmlinux_h):
    names = {}
    for m in re.finditer(r"\bBPF_FUNC_(\w+) = (\d+),", open(vmlinux_h).read()):
        names[int(m.group(2))] = "bpf_" + m.group(1)
    return names


def prog_type(section):
    for prefix, t in SECTIONS:
        if section.startswith(prefix):
            return t
    return None


def object_uses(obj, names):
    """{prog type: set of helper names} for one object, from its disassembly."""
    out = subprocess.run(["llvm-objdump", "-d", "--no-show-raw-insn", obj], check=True,
                         capture_output=True, text=True).stdout
    uses, cur = {}, None
    for line in out.splitlines():
        m = re.match(r"Disassembly of section (\S+):", line)
        if m:
            t = prog_type(m.group(1))
            cur = uses.setdefault(t or "unknown section " + m.group(1), set())
            continue
        m = re.search(r"\tcall (\d+)$", line)
        if m and cur is not None:
            cur.add(names.get(int(m.group(1)), "helper #" + m.group(1)))
    return uses


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: features.py PROBE.json VMLINUX_H MAPTYPES_FILE OBJ...")
    probe = json.load(open(sys.argv[1]))
    names = helper_names(sys.argv[2])
    map_types = open(sys.argv[3]).read().split()
    rows = []

    def row(feature, have, detail=""):
        rows.append(f"{feature}\t{'ok' if have else 'missing'}\t{detail}")

    uses = {}
    for obj in sys.argv[4:]:
        for t, helpers in object_uses(obj, names).items():
            uses.setdefault(t, set()).update(helpers)
    for t in sorted(uses):
        if t.startswith("unknown"):
            row(f"probe: prog {t}", False, "features.py does not know this section")
            continue
        row(f"probe: prog {t}", probe["program_types"].get(f"have_{t}_prog_type", False))
        avail = set(probe["helpers"].get(f"{t}_available_helpers", []))
        for h in sorted(uses[t]):
            row(f"probe: {t} {h}", h in avail)
    for m in map_types:
        row(f"probe: map {m}", probe["map_types"].get(f"have_{m}_map_type", False))
    row("probe: bounded loops", probe["misc"].get("have_bounded_loops", False))
    print("\n".join(rows))


main()
