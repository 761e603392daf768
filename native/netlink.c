/*
 * The container's veth pairs, through rtnetlink (no `ip`, no nsenter): for each `veth` record the
 * launcher, in the host's network namespace, deletes a stale host link of the same name (a previous
 * incarnation whose namespace is still being torn down), creates the pair with the peer directly in
 * the init's network namespace (IFLA_NET_NS_FD), named PEERIF with its MAC and MTU, the host end
 * enslaved to the bridge and up; then, through a netlink socket opened inside the init's namespace
 * (setns there and back: the launcher is single-threaded), gives the peer its address, brings it up
 * and adds the default route. All of it happens before the init is released, so the container's
 * command never runs without its network. Errors: `create veth HOSTIF: …`, one line.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launcher.h"

#define NL_OVERFLOW() fail(KIND_LAUNCH, "create veth: netlink message too large")
#include "nlmsg.h"

static void veth_fail(pid_t pid, const struct vethspec *v, const char *fmt, const char *what, int err)
{
	char msg[256];
	snprintf(msg, sizeof msg, fmt, what);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	fail(KIND_LAUNCH, "create veth %s: %s: %s", v->host, msg, errstr(err));
}

/* Host side: stale link gone, pair created with the peer in `nsfd`, host end on the bridge and up. */
static void veth_host(int fd, int nsfd, pid_t pid, const struct vethspec *v)
{
	unsigned bridge = if_nametoindex(v->bridge);
	if (bridge == 0)
		veth_fail(pid, v, "bridge %s", v->bridge, errno);

	struct nlbuf b;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	nl_init(&b, RTM_DELLINK, 0, &ifi, sizeof ifi);
	nl_attr(&b, IFLA_IFNAME, v->host, strlen(v->host) + 1);
	int r = nl_talk(fd, &b);
	if (r < 0 && r != -ENODEV)
		veth_fail(pid, v, "delete the stale link %s", v->host, -r);

	ifi.ifi_flags = IFF_UP;
	ifi.ifi_change = IFF_UP;
	nl_init(&b, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
	nl_attr(&b, IFLA_IFNAME, v->host, strlen(v->host) + 1);
	nl_attr(&b, IFLA_MTU, &v->mtu, sizeof v->mtu);
	nl_attr(&b, IFLA_MASTER, &bridge, sizeof bridge);
	struct rtattr *info = nl_nest(&b, IFLA_LINKINFO);
	nl_attr(&b, IFLA_INFO_KIND, "veth", 5);
	struct rtattr *data = nl_nest(&b, IFLA_INFO_DATA);
	struct rtattr *peer = nl_nest(&b, VETH_INFO_PEER);
	struct ifinfomsg pifi = { .ifi_family = AF_UNSPEC };
	/* The peer's attributes follow its own ifinfomsg inside VETH_INFO_PEER. */
	nl_raw(&b, &pifi, sizeof pifi);
	nl_attr(&b, IFLA_IFNAME, v->peer, strlen(v->peer) + 1);
	nl_attr(&b, IFLA_ADDRESS, v->mac, sizeof v->mac);
	nl_attr(&b, IFLA_MTU, &v->mtu, sizeof v->mtu);
	nl_attr(&b, IFLA_NET_NS_FD, &nsfd, sizeof nsfd);
	nl_nest_end(&b, peer);
	nl_nest_end(&b, data);
	nl_nest_end(&b, info);
	r = nl_talk(fd, &b);
	if (r < 0)
		veth_fail(pid, v, "add the pair on bridge %s", v->bridge, -r);
}

/* Inside (a socket of the init's namespace): address, link up, default route. */
static void veth_inside(int fd, pid_t pid, const struct vethspec *v, unsigned index)
{
	struct nlbuf b;
	struct ifaddrmsg ifa = { .ifa_family = AF_INET, .ifa_prefixlen = (unsigned char)v->prefix, .ifa_scope = RT_SCOPE_UNIVERSE, .ifa_index = index };
	nl_init(&b, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
	nl_attr(&b, IFA_LOCAL, &v->addr, sizeof v->addr);
	nl_attr(&b, IFA_ADDRESS, &v->addr, sizeof v->addr);
	int r = nl_talk(fd, &b);
	if (r < 0)
		veth_fail(pid, v, "add address to %s", v->peer, -r);

	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = (int)index, .ifi_flags = IFF_UP, .ifi_change = IFF_UP };
	nl_init(&b, RTM_NEWLINK, 0, &ifi, sizeof ifi);
	r = nl_talk(fd, &b);
	if (r < 0)
		veth_fail(pid, v, "bring up %s", v->peer, -r);

	if (!v->has_gateway)
		return;
	struct rtmsg rt = { .rtm_family = AF_INET, .rtm_table = RT_TABLE_MAIN, .rtm_protocol = RTPROT_BOOT,
			    .rtm_scope = RT_SCOPE_UNIVERSE, .rtm_type = RTN_UNICAST };
	nl_init(&b, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rt, sizeof rt);
	nl_attr(&b, RTA_GATEWAY, &v->gateway, sizeof v->gateway);
	nl_attr(&b, RTA_OIF, &index, sizeof index);
	r = nl_talk(fd, &b);
	if (r < 0)
		veth_fail(pid, v, "add the default route via the gateway on %s", v->peer, -r);
}

void veths_create(const struct plan *p, pid_t pid)
{
	if (p->nveths == 0)
		return;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
	int nsfd = open(path, O_RDONLY | O_CLOEXEC);
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int host = nl_socket();
	if (nsfd < 0 || self < 0 || host < 0)
		veth_fail(pid, &p->veths[0], "open %s", nsfd < 0 ? "the container's network namespace" : self < 0 ? "our network namespace" : "a netlink socket", errno);
	for (size_t i = 0; i < p->nveths; i++)
		veth_host(host, nsfd, pid, &p->veths[i]);
	close(host);

	/* A socket created inside the init's namespace stays bound to it after we return to ours. */
	if (setns(nsfd, CLONE_NEWNET) < 0)
		veth_fail(pid, &p->veths[0], "enter %s", "the container's network namespace", errno);
	int inside = nl_socket();
	int e = errno;
	unsigned index[8] = { 0 };
	for (size_t i = 0; i < p->nveths && inside >= 0; i++)
		index[i] = if_nametoindex(p->veths[i].peer);
	if (setns(self, CLONE_NEWNET) < 0)
		veth_fail(pid, &p->veths[0], "return to %s", "the host's network namespace", errno);
	if (inside < 0)
		veth_fail(pid, &p->veths[0], "open %s", "a netlink socket in the container", e);
	for (size_t i = 0; i < p->nveths; i++) {
		if (index[i] == 0)
			veth_fail(pid, &p->veths[i], "find %s in the container", p->veths[i].peer, ENODEV);
		veth_inside(inside, pid, &p->veths[i], index[i]);
	}
	close(inside);
	close(nsfd);
	close(self);
}
