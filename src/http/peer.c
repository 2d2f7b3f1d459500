/*
 * peer.c - what the application may ask about a request's client address.
 */
#include <netinet/in.h>
#include <string.h>

#include "http/server_int.h"

bool ld_req_peer_loopback(const struct ld_req *r)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	bool lo = false;

	if (uv_tcp_getpeername(&r->conn->tcp, (struct sockaddr *)&ss, &len) != 0)
		goto out;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;

		lo = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;

		lo = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
		     (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127);
	}
out:
	return lo;
}

int ld_req_peer_addr(const struct ld_req *r, struct sockaddr_storage *ss)
{
	struct ld_conn *c = r->conn;
	int len = sizeof(c->peer);

	if (!c->peer_known) {
		if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len) != 0)
			return -1;
		c->peer_known = true;
	}
	*ss = c->peer;
	return 0;
}
