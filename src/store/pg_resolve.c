/*
 * pg_resolve.c - conninfo host names looked up off the loop (pg_resolve.h
 * has the contract).
 *
 * One lookup at a time per request, host after host: a conninfo names a
 * handful of hosts, and trying them in order is what libpq does anyway.
 */
#include "store/pg_resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

#define LIST_MAX 8192 /* bytes of one rebuilt list */

struct ld_pg_hosts {
	char *conninfo;
	char **host; /* nhost entries of the host list */
	char **port; /* nport entries: 0 (default), 1 (for all) or nhost */
	unsigned nhost, nport;
};

struct lookup {
	uv_getaddrinfo_t req;
	const struct ld_pg_hosts *h;
	void *arg;
	unsigned tag;
	ld_pg_resolved_fn done;
	unsigned next; /* the host to look up next */
	unsigned found;
	struct ld_buf hosts, addrs, ports;
	char err[256];
};

/* needs_lookup: a name, not an address nor a socket directory. */
static bool needs_lookup(const char *host)
{
	unsigned char a[16];

	if (!host[0] || host[0] == '/' || host[0] == '@')
		return false;
	return inet_pton(AF_INET, host, a) != 1 && inet_pton(AF_INET6, host, a) != 1;
}

/* split_list cuts a comma-separated list into *out (n entries). */
static int split_list(const char *s, char ***out, unsigned *n)
{
	const char *p = s;
	unsigned i = 0, count = 1;
	char **v;

	for (; *p; p++)
		count += *p == ',';
	v = calloc(count, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (p = s; i < count; i++) {
		size_t len = strcspn(p, ",");

		v[i] = strndup(p, len);
		if (!v[i]) {
			while (i-- > 0)
				free(v[i]);
			free(v);
			return -ENOMEM;
		}
		p += len + (p[len] == ',');
	}
	*out = v;
	*n = count;
	return 0;
}

void ld_pg_hosts_free(struct ld_pg_hosts *h)
{
	unsigned i;

	if (!h)
		return;
	for (i = 0; i < h->nhost; i++)
		free(h->host[i]);
	for (i = 0; i < h->nport; i++)
		free(h->port[i]);
	free(h->host);
	free(h->port);
	free(h->conninfo);
	free(h);
}

int ld_pg_hosts_parse(const char *conninfo, struct ld_pg_hosts **out, char *err, size_t errlen)
{
	PQconninfoOption *opts, *o;
	const char *host = NULL, *hostaddr = NULL, *port = NULL;
	struct ld_pg_hosts *h = NULL;
	char *msg = NULL;
	bool any = false;
	unsigned i;
	int rc = -ENOMEM;

	*out = NULL;
	opts = PQconninfoParse(conninfo, &msg);
	if (!opts) {
		snprintf(err, errlen, "%s", msg ? msg : "out of memory");
		err[strcspn(err, "\n")] = '\0';
		rc = msg ? -EINVAL : -ENOMEM;
		goto out;
	}
	for (o = opts; o->keyword; o++) {
		if (!o->val || !o->val[0])
			continue;
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
	}
	rc = 0;
	if (!host || hostaddr)
		goto out; /* libpq's default host is a socket; hostaddr: no lookup */
	h = calloc(1, sizeof(*h));
	rc = -ENOMEM;
	if (!h || !(h->conninfo = strdup(conninfo)) || split_list(host, &h->host, &h->nhost) != 0 ||
	    (port && split_list(port, &h->port, &h->nport) != 0))
		goto out;
	for (i = 0; i < h->nhost; i++)
		any |= needs_lookup(h->host[i]);
	rc = 0;
	if (any) {
		*out = h;
		h = NULL;
	}
out:
	ld_pg_hosts_free(h);
	PQconninfoFree(opts);
	PQfreemem(msg);
	return rc;
}

static const char *port_of(const struct ld_pg_hosts *h, unsigned i)
{
	if (h->nport == 0)
		return "";
	return h->port[h->nport == 1 ? 0 : (i < h->nport ? i : h->nport - 1)];
}

/* add appends one host entry to the three lists. */
static void add(struct lookup *l, const char *host, const char *addr, const char *port)
{
	const char *sep = l->found ? "," : "";

	ld_buf_printf(&l->hosts, "%s%s", sep, host);
	ld_buf_printf(&l->addrs, "%s%s", sep, addr);
	ld_buf_printf(&l->ports, "%s%s", sep, port);
	l->found++;
}

static void finish(struct lookup *l)
{
	const char *kw[] = {"dbname", "host", "hostaddr", "port", NULL};
	const char *vals[5] = {l->h->conninfo, l->hosts.data, l->addrs.data, l->ports.data, NULL};
	int rc = ld_buf_error(&l->hosts)   ? ld_buf_error(&l->hosts)
		 : ld_buf_error(&l->addrs) ? ld_buf_error(&l->addrs)
					   : ld_buf_error(&l->ports);

	if (rc == 0 && l->found == 0)
		rc = -EHOSTUNREACH;
	if (rc == -E2BIG || rc == -ENOMEM)
		snprintf(l->err, sizeof(l->err), "too many addresses for the conninfo's hosts");
	if (rc == 0 && l->h->nport <= 1)
		kw[3] = NULL; /* one port (or none) applies to every host */
	l->done(l->arg, l->tag, rc, rc == 0 ? kw : NULL, rc == 0 ? vals : NULL, l->err);
	ld_buf_release(&l->hosts);
	ld_buf_release(&l->addrs);
	ld_buf_release(&l->ports);
	free(l);
}

static void step(struct lookup *l);

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct lookup *l = req->data;
	const char *name = l->h->host[l->next];
	const char *port = port_of(l->h, l->next);
	char addr[INET6_ADDRSTRLEN];
	struct addrinfo *ai;

	if (status < 0) {
		/* Like an unreachable host: the next one may do. */
		snprintf(l->err, sizeof(l->err), "cannot resolve %s: %s", name,
			 uv_strerror(status));
	} else {
		for (ai = res; ai; ai = ai->ai_next) {
			if (ai->ai_family == AF_INET)
				uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, addr,
					    sizeof(addr));
			else if (ai->ai_family == AF_INET6)
				uv_ip6_name((const struct sockaddr_in6 *)ai->ai_addr, addr,
					    sizeof(addr));
			else
				continue;
			add(l, name, addr, port);
		}
	}
	uv_freeaddrinfo(res);
	l->next++;
	step(l);
}

/* step passes the entries that need no lookup and starts the next lookup,
 * or finishes. */
static void step(struct lookup *l)
{
	const struct ld_pg_hosts *h = l->h;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	int rc;

	while (l->next < h->nhost) {
		const char *name = h->host[l->next];

		if (needs_lookup(name)) {
			rc = uv_getaddrinfo(l->req.loop, &l->req, on_resolved, name, NULL, &hints);
			if (rc == 0)
				return;
			snprintf(l->err, sizeof(l->err), "cannot resolve %s: %s", name,
				 uv_strerror(rc));
		} else {
			/* An empty hostaddr entry: libpq takes the host as it is. */
			add(l, name, !name[0] || name[0] == '/' || name[0] == '@' ? "" : name,
			    port_of(h, l->next));
		}
		l->next++;
	}
	finish(l);
}

int ld_pg_resolve(uv_loop_t *loop, const struct ld_pg_hosts *h, void *arg, unsigned tag,
		  ld_pg_resolved_fn done)
{
	struct lookup *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->h = h;
	l->arg = arg;
	l->tag = tag;
	l->done = done;
	l->req.data = l;
	l->req.loop = loop;
	ld_buf_init(&l->hosts, LIST_MAX);
	ld_buf_init(&l->addrs, LIST_MAX);
	ld_buf_init(&l->ports, LIST_MAX);
	step(l);
	return 0;
}
