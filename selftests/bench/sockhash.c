// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What deleting a socket from a sockhash costs while N others are held in it
 * (reported elsewhere to grow with N): the accepted ends of N loopback TCP
 * connections go in a SOCKHASH shaped like ks_sockhash, then one more socket is added
 * and deleted ROUNDS times; prints the median delete time in ns.
 *
 *   sockhash N [ROUNDS]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "maps/ksteer_maps.h"

static int cmp(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return x < y ? -1 : x > y;
}

static long ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000L + t.tv_nsec;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 0, rounds = argc > 2 ? atoi(argv[2]) : 2000;
	struct rlimit rl;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int lfd, map, one = 1;
	long *t = calloc((size_t)rounds, sizeof(long));

	/* one descriptor per held socket: the accepted end; the connecting end is closed */
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	map = bpf_map_create(BPF_MAP_TYPE_SOCKHASH, "ksb_sockhash", sizeof(struct ks_sock_key),
			     sizeof(uint64_t), (uint32_t)(n + 16), NULL);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (map < 0 || lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 4096) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl)) {
		perror("sockhash: setup");
		return 1;
	}
	for (int i = 0; i <= n; i++) {
		struct ks_sock_key k = { .lport = (uint16_t)i, .rport = (uint16_t)(i >> 16) };
		int c = socket(AF_INET, SOCK_STREAM, 0), a;
		uint64_t fd;

		if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) ||
		    (a = accept(lfd, NULL, NULL)) < 0) {
			perror("sockhash: connection");
			return 1;
		}
		fd = (uint64_t)a;
		if (i == n) { /* the probe: in and out, timed */
			k.lport = 0xffff;
			k.rport = 0xffff;
			for (int r = 0; r < rounds; r++) {
				long t0;

				if (bpf_map_update_elem(map, &k, &fd, BPF_NOEXIST)) {
					perror("sockhash: update");
					return 1;
				}
				t0 = ns();
				bpf_map_delete_elem(map, &k);
				t[r] = ns() - t0;
			}
			break;
		}
		if (bpf_map_update_elem(map, &k, &fd, BPF_NOEXIST)) {
			perror("sockhash: update");
			return 1;
		}
		close(c);
	}
	qsort(t, (size_t)rounds, sizeof(long), cmp);
	printf("%ld\n", t[rounds / 2]);
	return 0;
}
