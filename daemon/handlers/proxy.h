/* proxy: the proxy handler's byte counters, for the stats export and the
 * tests (the handler itself is handler_proxy, in handler.h). */
#ifndef ACCEPTD_PROXY_H
#define ACCEPTD_PROXY_H

/* One listener's proxied traffic in this worker: what every connection
 * moved so far, the open ones included (bytes are counted as they move). */
struct proxy_stats {
	unsigned long long bytes_in;    /* read from clients (sent upstream) */
	unsigned long long bytes_out;   /* written to clients (from upstream) */
	unsigned long conns;            /* open: connecting or relaying */
	unsigned long long connect_failed; /* upstream connect attempts that failed */
	unsigned long long no_upstream; /* clients closed: every upstream failed */
};

/* conf: the listener's handler_conf (the proxy handler's). */
void proxy_stats(const void *conf, struct proxy_stats *out);

/* One open connection's counters, for whoever walks them (stats, tests). */
struct proxy_conn;
struct proxy_conn *proxy_conn_first(const void *conf);
struct proxy_conn *proxy_conn_next(const struct proxy_conn *p);
void proxy_conn_bytes(const struct proxy_conn *p, unsigned long long *in,
    unsigned long long *out);
/* Bytes held in the handler for this connection, both directions (its
 * buffers or pipes): never more than 2 * PROXY_BUF. */
unsigned long proxy_conn_held(const struct proxy_conn *p);

/* Per direction: what the handler holds before it stops reading that
 * direction's source (buffer size, or the bytes kept in the splice pipe). */
#define PROXY_BUF (64 * 1024)

#endif
