/*
 * A small rtnetlink request builder, shared by the launcher (netlink.c: veth pairs) and tspod-sys.node
 * (sys.c: the bridge): a request in a fixed buffer, attributes and nests appended, one request sent
 * and its ack read. The includer defines NL_OVERFLOW(), what to do when a message does not fit (the
 * messages are small and fixed, so that is a programming error).
 */
#ifndef TSPOD_NLMSG_H
#define TSPOD_NLMSG_H

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

struct nlbuf {
	struct nlmsghdr *h;
	size_t cap;
	char data[2048] __attribute__((aligned(NLMSG_ALIGNTO)));
};

static inline void nl_init(struct nlbuf *b, int type, int flags, const void *hdr, size_t hlen)
{
	memset(b->data, 0, sizeof b->data);
	b->cap = sizeof b->data;
	b->h = (struct nlmsghdr *)b->data;
	b->h->nlmsg_len = (uint32_t)NLMSG_LENGTH(hlen);
	b->h->nlmsg_type = (uint16_t)type;
	b->h->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
	memcpy(NLMSG_DATA(b->h), hdr, hlen);
}

/* Appends raw bytes at the next aligned offset (a nested header such as veth's peer ifinfomsg). */
static inline void nl_raw(struct nlbuf *b, const void *val, size_t len)
{
	size_t at = NLMSG_ALIGN(b->h->nlmsg_len);
	if (at + NLMSG_ALIGN(len) > b->cap)
		NL_OVERFLOW();
	memcpy(b->data + at, val, len);
	b->h->nlmsg_len = (uint32_t)(at + NLMSG_ALIGN(len));
}

static inline struct rtattr *nl_attr(struct nlbuf *b, int type, const void *val, size_t len)
{
	size_t at = NLMSG_ALIGN(b->h->nlmsg_len);
	if (at + RTA_SPACE(len) > b->cap)
		NL_OVERFLOW();
	struct rtattr *a = (struct rtattr *)(b->data + at);
	a->rta_type = (unsigned short)type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), val, len);
	b->h->nlmsg_len = (uint32_t)(at + RTA_SPACE(len));
	return a;
}

static inline struct rtattr *nl_nest(struct nlbuf *b, int type)
{
	return nl_attr(b, type, NULL, 0);
}

static inline void nl_nest_end(struct nlbuf *b, struct rtattr *nest)
{
	nest->rta_len = (unsigned short)(b->data + b->h->nlmsg_len - (char *)nest);
}

/* Sends one request and reads its ack: 0, or a negative errno. */
static inline int nl_talk(int fd, struct nlbuf *b)
{
	static uint32_t seq;
	b->h->nlmsg_seq = ++seq;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	if (sendto(fd, b->data, b->h->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa) < 0)
		return -errno;
	char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
	for (;;) {
		ssize_t r = recv(fd, buf, sizeof buf, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)r); h = NLMSG_NEXT(h, r)) {
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				return e->error;
			}
		}
	}
}

static inline int nl_socket(void)
{
	return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
}

#endif
