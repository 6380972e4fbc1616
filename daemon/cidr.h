/* cidr: address blocks ("10.0.0.0/8", "2001:db8::/32", "::1") parsed from
 * text and matched against peers; IPv4-mapped IPv6 addresses, in a block
 * or in a peer, are taken as the IPv4 address they carry. */
#ifndef ACCEPTD_CIDR_H
#define ACCEPTD_CIDR_H

#include <stddef.h>
#include <sys/socket.h>

struct cidr {
	int family;                /* AF_INET or AF_INET6 */
	unsigned bits;             /* prefix length: 0..32 or 0..128 */
	unsigned char addr[16];    /* network order, host bits cleared */
};

struct cidr_list {
	struct cidr *v;
	size_t n;
};

/* One block from s[0..len): an IPv4 or IPv6 address, optionally /BITS
 * (decimal, no sign). Host bits beyond the prefix are cleared. 0, or -1
 * when it is not one. Reads only s[0..len); needs no terminator. */
int cidr_parse(const char *s, size_t len, struct cidr *out);
/* A list of blocks separated by commas and/or blanks into out (an empty
 * list is fine). 0, or -1 with the offending item (up to 64 bytes) in bad
 * and out untouched; -1 with bad "" when out of memory. */
int cidr_list_parse(const char *s, struct cidr_list *out, char *bad, size_t badlen);
void cidr_list_free(struct cidr_list *l);
/* The block contains the address: 1 or 0. A non-IP address is in none. */
int cidr_match(const struct cidr *c, const struct sockaddr *sa, socklen_t len);
int cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa, socklen_t len);
/* The block as text, "10.0.0.0/8" (buf >= 48). */
void cidr_format(const struct cidr *c, char *buf, size_t n);

#endif
