/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ksteer dataplane ABI: every map key and value shared by the BPF
 * programs and user space. Fixed-width types, explicit padding, no pointers.
 * Bump KS_LAYOUT_VERSION whenever a struct below changes shape.
 */
#ifndef KSTEER_MAPS_H
#define KSTEER_MAPS_H

#ifdef __BPF__
/* vmlinux.h already provides the __u32/__be16 family */
#else
#include <linux/types.h>
#endif

/*
 * Map names are ks_<noun>: the kernel keeps 15 characters of a map's name
 * (BPF_OBJ_NAME_LEN), and bpftool finds maps by that name. The pins under
 * /sys/fs/bpf/ksteer/INSTANCE/ carry the same names. Layout 3 renamed
 * layout 2's ksteer_* maps (ksteer_guard_stats was cut to ksteer_guard_st).
 * Layout 4 made ks_dests and ks_backends arrays and added ks_fe_filter.
 * Layout 5 moved what is fixed for an agent's life (its mark, the shim's
 * address and ports) out of ks_config into the programs' read-only data.
 * Layout 6 replaced ks_fe_filter with ks_fe_slots (a frontend found in one
 * cache line) and, for getpeername, ks_sock storage of routed sockets with
 * the ks_peers ring.
 * Layout 7 bounded the splice: ks_splice grew its backlog accounting and
 * ks_stats the splice_fallback and splice_overflow counters.
 */
#define KS_LAYOUT_VERSION 7

/* Two generations of policy live side by side; ks_config.active picks one. */
#define KS_GENERATIONS 2
/* Destinations of one kernel route (Istio sets no limit; ksteer refuses more). */
#define KS_MAX_DESTS 16

/* Default capacities per generation; the agent may resize them at load time. */
#define KS_DEF_FRONTENDS 65536
#define KS_DEF_DESTS 65536
#define KS_DEF_BACKENDS 262144

/* An IPv6 address, or an IPv4 one as ::ffff:a.b.c.d, network order. */
struct ks_addr {
	__be32 a[4];
};

/* ks_frontends: (generation, VIP, port, protocol) -> frontend */
struct ks_frontend_key {
	__u32 gen;
	struct ks_addr addr;
	__be16 port;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

enum ks_frontend_flags {
	KS_FE_SHIM = 1u << 0, /* per-request decision or TLS: send to the node's shim */
	KS_FE_TLS = 1u << 1, /* the shim originates TLS for this frontend */
	KS_FE_NO_UPSTREAM = 1u << 2, /* no destination has an endpoint: refuse */
};

struct ks_frontend {
	__u32 id; /* stable within one image: index in sorted order */
	__u32 flags; /* enum ks_frontend_flags */
	__u32 dest_first; /* index of the first ks_dest of the route (in the map: absolute) */
	__u32 dest_count; /* at most KS_MAX_DESTS */
	__u32 weight_total; /* sum of the destinations' weights, > 0 unless NO_UPSTREAM */
	__u32 pad;
};

/*
 * ks_dests and ks_backends are arrays: generation g's entry i is at
 * g * (max_entries / KS_GENERATIONS) + i, and the indices inside the entries
 * (dest_first, backend_first) are absolute, so a connect reads them without
 * hashing. The image holds them relative to 0; the agent adds the offset.
 */

/* One weighted destination: a (host, subset, port) with its endpoint range. */
struct ks_dest {
	__u32 weight_cum; /* running sum of weights up to and including this one */
	__u32 backend_first; /* (in the map: absolute) */
	__u32 backend_count; /* 0: this destination has no healthy upstream */
	__u32 pad;
};

struct ks_backend {
	struct ks_addr addr;
	__be16 port;
	__u16 pad;
	__u32 weight; /* endpoint weight, carried; selection is uniform for now */
};

/*
 * ks_fe_slots: what connect reads, one 64-byte line per frontend. Per
 * generation an open-addressing table of 2^KS_SLOT_SHIFT slots (generation g's
 * first at g << KS_SLOT_SHIFT); a key's home is ks_fe_slot_home()
 * (bpf/lib/route.h) and it lies in the first free slot of the
 * KS_SLOT_PROBES from its home, wrapping. A lookup stops at a free slot (not
 * a frontend); a key with no free slot in its window stays only in
 * ks_frontends and marks its home KS_SLOT_OVERFLOW, where a lookup that found
 * nothing in the window asks the hash. The slot carries the frontend and its
 * first destination, so a route to one destination reads no ks_dests.
 * ks_frontends (the hash) holds every frontend: what tools read.
 * ks_fe_used is the table's occupancy, a bit per slot (generation g's first
 * word at g * KS_SLOT_WORDS): a free home is "not a frontend" from 16 KB that
 * stay in cache, where the table's 8 MB do not.
 */
#define KS_SLOT_SHIFT 17
#define KS_SLOTS (1u << KS_SLOT_SHIFT)
#define KS_SLOT_WORDS (KS_SLOTS / 64)
#define KS_SLOT_PROBES 4

enum ks_slot_state {
	KS_SLOT_USED = 1u << 0,
	KS_SLOT_OVERFLOW = 1u << 1, /* a key homed here lies only in ks_frontends */
};

struct ks_fe_slot {
	struct ks_addr addr;
	__be16 port;
	__u8 proto;
	__u8 state; /* enum ks_slot_state; 0: free */
	struct ks_frontend fe;
	struct ks_dest first; /* ks_dests[fe.dest_first], when fe.dest_count > 0 */
	__u32 pad[1];
};

/*
 * ks_peers: what a routed socket dialled, for getpeername, at slot
 * cookie % KS_PEERS. Socket cookies are numbered host-wide (in per-CPU
 * batches of 4,096) for every socket anything asks one of, so a record lasts
 * until about KS_PEERS more cookies have been given out; after that, or once
 * the socket is connected elsewhere (the backend no longer matches),
 * getpeername shows the backend.
 */
#define KS_PEERS_SHIFT 18
#define KS_PEERS (1u << KS_PEERS_SHIFT)

struct ks_peer {
	__u64 cookie; /* 0: free */
	struct ks_addr addr; /* the VIP dialled */
	__be16 port;
	__be16 backend_port; /* where it was sent: getpeername rewrites only that peer */
	__be32 backend_lo; /* the backend address's last 32 bits (IPv4: all of it) */
};

/*
 * ks_config: a single-entry array of what changes while the programs run;
 * an image switch writes the one word `active`. What is fixed for a loaded
 * program (the agent's mark, the shim's address and ports) is its rodata:
 * struct ks_knobs, set by the agent before load (bpftool map dump name
 * ksteer_s.rodata shows it).
 */
struct ks_config {
	__u32 layout_version; /* KS_LAYOUT_VERSION of whoever filled the maps */
	__u32 active; /* generation the programs read, < KS_GENERATIONS */
	__u32 sockmap; /* 1: app <-> shim sockets join ks_sockhash (sk_msg) */
};

struct ks_knobs {
	struct ks_addr shim_addr; /* node-local shim outbound listener */
	__be16 shim_port;
	__be16 dns_port; /* pods' UDP/53 goes to shim_addr:dns_port; 0: left alone */
	__u32 self_mark; /* SO_MARK of the agent's own sockets: never redirected */
};

/* ks_origdst: socket cookie -> what the application dialled (for the shim). */
struct ks_origdst {
	struct ks_addr addr;
	__be16 port;
	__u16 pad;
	__u32 frontend_id;
};

/* ks_sock (socket storage): what a socket sent to the shim or the resolver dialled */
enum ks_sock_flags {
	KS_SOCK_REWRITTEN = 1u << 0,
	KS_SOCK_TO_SHIM = 1u << 1, /* sockops records its 4-tuple in ks_origdst */
	KS_SOCK_DNS = 1u << 2, /* UDP/53 sent to the agent's resolver: replies are rewritten */
	KS_SOCK_PLAIN = 1u << 3, /* its first message found no peer in the sockhash: TCP for life */
	KS_SOCK_REDIRECTED = 1u << 4, /* its messages go socket to socket (sk_msg) */
};

struct ks_sock {
	struct ks_addr orig_addr;
	__be16 orig_port;
	__u16 flags; /* enum ks_sock_flags */
	__u32 frontend_id;
};

/* ks_origdst key: the client end of a connection to the shim, as the shim sees it */
struct ks_peer_key {
	struct ks_addr addr;
	__be16 port;
	__u16 pad;
};

/* ks_stats: per-CPU array of counters indexed by this enum. */
enum ks_stat {
	KS_STAT_CONNECT_SEEN,
	KS_STAT_CONNECT_ROUTED,
	KS_STAT_CONNECT_SHIM,
	KS_STAT_CONNECT_NO_UPSTREAM,
	KS_STAT_CONNECT_MISS,
	KS_STAT_CONNECT_SELF, /* the agent's own sockets, never redirected */
	KS_STAT_DNS_REDIRECTED, /* UDP/53 connects and sends sent to the agent's resolver */
	KS_STAT_SOCKMAP_ADDED, /* app or shim sockets put in ks_sockhash by sockops */
	KS_STAT_SOCKMAP_REDIRECTED, /* messages handed socket to socket by sk_msg */
	KS_STAT_SOCKMAP_PLAIN, /* messages that went through TCP: no peer when the flow began */
	KS_STAT_SPLICE_REDIRECTED, /* gateway: segments sent socket to socket by sk_skb */
	KS_STAT_SPLICE_DROPPED, /* gateway: segments whose peer was already gone */
	KS_STAT_SPLICE_FALLBACK, /* gateway: directions handed to the copy loop at the bound */
	KS_STAT_SPLICE_OVERFLOW, /* gateway: tunnels broken, both ways stalled past the bound */
	KS_STAT_MAX,
};

/*
 * ks_sockhash: the two ends of each app <-> shim connection on a node, keyed
 * by the socket's own 4-tuple (IPv4 as ::ffff:); sk_msg hands a message to the
 * peer's receive queue, skipping TCP/IP.
 */
struct ks_sock_key {
	struct ks_addr local, remote;
	__u16 lport, rport; /* host order */
};

#define KS_SOCKHASH_MAX 65536

/*
 * The gateway's splice: both sockets of a passthrough tunnel in ks_splice
 * (a SOCKHASH keyed by socket cookie); an sk_skb verdict sends each side's
 * bytes out of the other and counts them, so half-closes are passed on only
 * once every byte before them has been queued.
 *
 * Bytes redirected wait in the peer's psock backlog, charged to no socket,
 * until the peer's TCP takes them: the verdict keeps that backlog under
 * KS_SPLICE_BACKLOG (redirected - (peer's write_seq - base)). At the bound the
 * direction falls back for good: its bytes are passed up to this socket
 * (charged to it, so TCP's window closes) and the shim copies them once the
 * backlog has been sent. Passed bytes that must wait behind this socket's own
 * backlog are uncharged again, so while that backlog holds the other way's
 * bytes the verdict redirects on instead, up to KS_SPLICE_BACKLOG_MAX; past
 * that, or past KS_SPLICE_BACKLOG bytes held after a fall-back (both ways
 * stalled), the tunnel is broken (KS_SPLICE_OVERFLOW) and the shim resets it.
 */
#define KS_SPLICE_BACKLOG (256 * 1024)
#define KS_SPLICE_BACKLOG_MAX (4 * KS_SPLICE_BACKLOG)

enum ks_splice_flags {
	KS_SPLICE_BASED = 1u << 0, /* base holds the peer's write_seq at the first redirect */
	KS_SPLICE_COPY = 1u << 1, /* fell back: every byte from here on is passed up */
	KS_SPLICE_OVERFLOW = 1u << 2, /* bytes dropped: the shim resets the tunnel */
	KS_SPLICE_DRAINED = 1u << 3, /* the peer fell back and this socket's backlog is sent */
};

struct ks_splice {
	__u64 peer; /* the other socket's cookie */
	__u64 bytes; /* payload bytes redirected from this socket to the peer */
	__u64 passed; /* bytes passed up to user space after the fallback */
	__u32 held; /* passed bytes waiting behind this socket's own backlog */
	__u32 base; /* the peer's write_seq when the first byte was redirected */
	__u32 flags; /* enum ks_splice_flags, written by this socket's verdict only */
	__u32 held_end; /* this socket's write_seq once the bytes held wait no more */
};

/*
 * The XDP guard (ksteer_xdp.bpf.c): packets to a guarded port (ks_guard_ports)
 * from a source outside every allowed network (ks_guard_allow, an LPM trie
 * over ks_addr: IPv4 as ::ffff:a.b.c.d/96+len) are dropped. What it cannot
 * judge by port fails closed for such sources: a first fragment cut short of
 * its TCP/UDP header, an IPv6 header chain longer than it walks, and a later
 * fragment unless the guard passed its datagram's first (ks_gfrags).
 */
struct ks_lpm_key {
	__u32 prefixlen; /* over the 128 bits of addr */
	struct ks_addr addr;
};

/* A datagram being reassembled, as the kernel keys it (ks_gfrags, an LRU hash). */
struct ks_frag_key {
	struct ks_addr src, dst;
	__be32 id; /* IPv4's 16 bits widened, or IPv6's 32 */
	__u8 proto; /* IPv4's protocol; 0 for IPv6 (later fragments may name another) */
	__u8 pad[3];
};

enum ks_guard_stat {
	KS_GUARD_PASS_NOT_IP, /* ARP, LLDP, anything not IPv4/IPv6 */
	KS_GUARD_PASS_OTHER, /* not TCP/UDP, or a port nobody guards */
	KS_GUARD_PASS_ALLOWED, /* from an allowed network: a guarded port, or not judged by port */
	KS_GUARD_PASS_FRAGMENT, /* a later fragment: from an allowed network, or its first passed */
	KS_GUARD_PASS_TRUNCATED, /* not a fragment, too short to judge: the stack drops it */
	KS_GUARD_DROP_DENIED, /* a guarded port, from outside the allowed networks */
	/* the rest also drop, and only packets from outside the allowed networks */
	KS_GUARD_DROP_FIRST_CUT, /* a first fragment without its whole TCP/UDP header */
	KS_GUARD_DROP_LATER, /* a later fragment whose first the guard did not pass */
	KS_GUARD_DROP_OVERLAP, /* an IPv4 TCP fragment at offset 8, rewriting a header (RFC 1858) */
	KS_GUARD_DROP_EXT_CHAIN, /* IPv6 extension headers beyond the guard's walk */
	KS_GUARD_STAT_MAX,
};

#define KS_GUARD_MAX_NETS 4096
#define KS_GUARD_MAX_PORTS 64
#define KS_GUARD_MAX_FRAGS 8192 /* datagrams in reassembly; Linux holds 4 MB of fragments */

#ifndef __BPF__
_Static_assert(sizeof(struct ks_lpm_key) == 20, "ks_lpm_key layout");
_Static_assert(sizeof(struct ks_frag_key) == 40, "ks_frag_key layout");
_Static_assert(sizeof(struct ks_sock_key) == 36, "ks_sock_key layout");
_Static_assert(sizeof(struct ks_splice) == 40, "ks_splice layout");
_Static_assert(sizeof(struct ks_addr) == 16, "ks_addr layout");
_Static_assert(sizeof(struct ks_frontend_key) == 24, "ks_frontend_key layout");
_Static_assert(sizeof(struct ks_frontend) == 24, "ks_frontend layout");
_Static_assert(sizeof(struct ks_fe_slot) == 64, "ks_fe_slot layout");
_Static_assert(sizeof(struct ks_peer) == 32, "ks_peer layout");
_Static_assert(sizeof(struct ks_dest) == 16, "ks_dest layout");
_Static_assert(sizeof(struct ks_backend) == 24, "ks_backend layout");
_Static_assert(sizeof(struct ks_config) == 12, "ks_config layout");
_Static_assert(sizeof(struct ks_knobs) == 24, "ks_knobs layout");
_Static_assert(sizeof(struct ks_origdst) == 24, "ks_origdst layout");
_Static_assert(sizeof(struct ks_sock) == 24, "ks_sock layout");
_Static_assert(sizeof(struct ks_peer_key) == 20, "ks_peer_key layout");
#endif

#endif /* KSTEER_MAPS_H */
