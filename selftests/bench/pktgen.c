// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A packet generator for the guard's benchmark: UDP frames to one port, from
 * a rotating set of source addresses, out of an interface through an
 * AF_PACKET socket that bypasses the qdisc, in sendmmsg batches, for a given
 * time. Prints the frames sent. (xdp-trafficgen 1.3.1 does not load on this
 * kernel: it wants a tracepoint that was renamed.)
 *
 *   pktgen IFNAME DST_MAC SRC_IP DST_IP DST_PORT SECONDS
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define SOURCES 64

static uint16_t csum(const void *p, size_t n)
{
	const uint16_t *w = p;
	uint32_t s = 0;

	for (; n > 1; n -= 2)
		s += *w++;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

int main(int argc, char **argv)
{
	unsigned char frames[SOURCES][64], mac[6];
	struct sockaddr_ll sll = { .sll_family = AF_PACKET };
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct timespec t0, t;
	unsigned long long sent = 0;
	int fd, one = 1;
	double secs;

	if (argc != 7 || sscanf(argv[2], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2],
				&mac[3], &mac[4], &mac[5]) != 6) {
		fprintf(stderr, "usage: pktgen IFNAME DST_MAC SRC_IP DST_IP DST_PORT SECONDS\n");
		return 2;
	}
	secs = atof(argv[6]);
	for (int i = 0; i < SOURCES; i++) {
		unsigned char *f = frames[i];
		struct ether_header *eh = (void *)f;
		struct iphdr *ip = (void *)(f + 14);
		struct udphdr *uh = (void *)(f + 34);

		memset(f, 0, 64);
		memcpy(eh->ether_dhost, mac, 6);
		memcpy(eh->ether_shost, "\x02\x00\x00\x00\x00\x01", 6);
		eh->ether_type = htons(ETHERTYPE_IP);
		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = 64;
		ip->protocol = IPPROTO_UDP;
		ip->tot_len = htons(64 - 14);
		inet_pton(AF_INET, argv[3], &ip->saddr);
		ip->saddr = htonl(ntohl(ip->saddr) + (uint32_t)i); /* spread over flows */
		inet_pton(AF_INET, argv[4], &ip->daddr);
		ip->check = csum(ip, 20);
		uh->source = htons((uint16_t)(40000 + i));
		uh->dest = htons((uint16_t)atoi(argv[5]));
		uh->len = htons(64 - 34);
	}
	fd = socket(AF_PACKET, SOCK_RAW, 0);
	sll.sll_ifindex = (int)if_nametoindex(argv[1]);
	if (fd < 0 || !sll.sll_ifindex || bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		perror("pktgen: AF_PACKET");
		return 1;
	}
	setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	memset(msgs, 0, sizeof(msgs));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned long round = 0;; round++) {
		int n;

		for (int i = 0; i < BATCH; i++) {
			iov[i].iov_base = frames[(round * BATCH + (unsigned)i) % SOURCES];
			iov[i].iov_len = 64;
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		n = sendmmsg(fd, msgs, BATCH, 0);
		if (n > 0)
			sent += (unsigned long long)n;
		if (!(round & 63)) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			if ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 >= secs)
				break;
		}
	}
	printf("%llu\n", sent);
	return 0;
}
