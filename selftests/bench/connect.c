// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * connect4/connect6 load for `make bench`: N TCP connects, round robin over
 * COUNT addresses from FIRST (IPv4, or IPv6 when it has a colon, ::ffff:
 * included), each accepted by our own listener on :8080 and reset at once
 * (SO_LINGER 0: no TIME_WAIT piles up). The caller routes every address to
 * this host; what is timed is the cgroup program, read from bpf_stats.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void add_v6(struct in6_addr *a, unsigned int n)
{
	for (int i = 15; i >= 0 && n; i--) {
		n += a->s6_addr[i];
		a->s6_addr[i] = n & 0xff;
		n >>= 8;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in6 l6 = { .sin6_family = AF_INET6 }, d6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in d4 = { .sin_family = AF_INET };
	struct linger lin = { 1, 0 };
	unsigned long n, count, failed = 0;
	struct in6_addr first6;
	struct in_addr first4;
	int lfd, one = 1, v6;
	unsigned int port;

	if (argc != 5) {
		fprintf(stderr, "usage: %s FIRST COUNT PORT N\n", argv[0]);
		return 2;
	}
	v6 = !!strchr(argv[1], ':');
	if ((v6 ? inet_pton(AF_INET6, argv[1], &first6) : inet_pton(AF_INET, argv[1], &first4)) != 1) {
		fprintf(stderr, "Error: bad address %s\n", argv[1]);
		return 2;
	}
	count = strtoul(argv[2], NULL, 0);
	port = strtoul(argv[3], NULL, 0);
	n = strtoul(argv[4], NULL, 0);
	if (!count || !port || port > 65535) {
		fprintf(stderr, "Error: COUNT and PORT must be positive\n");
		return 2;
	}
	/* one dual-stack listener on the backends' port; accept queue long enough for one */
	lfd = socket(AF_INET6, SOCK_STREAM, 0);
	l6.sin6_port = htons(8080);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&l6, sizeof(l6)) || listen(lfd, 64)) {
		fprintf(stderr, "Error: listen on :8080: %s\n", strerror(errno));
		return 1;
	}
	for (unsigned long i = 0; i < n; i++) {
		int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0), afd, err;

		if (fd < 0) {
			fprintf(stderr, "Error: socket: %s\n", strerror(errno));
			return 1;
		}
		if (v6) {
			d6.sin6_addr = first6;
			add_v6(&d6.sin6_addr, i % count);
			d6.sin6_port = htons(port);
			err = connect(fd, (struct sockaddr *)&d6, sizeof(d6));
		} else {
			d4.sin_addr.s_addr = htonl(ntohl(first4.s_addr) + i % count);
			d4.sin_port = htons(port);
			err = connect(fd, (struct sockaddr *)&d4, sizeof(d4));
		}
		if (err) {
			failed++;
			close(fd);
			continue;
		}
		afd = accept(lfd, NULL, NULL);
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
		close(fd);
		if (afd >= 0)
			close(afd);
	}
	close(lfd);
	printf("%lu connects, %lu failed\n", n, failed);
	return failed == n;
}
