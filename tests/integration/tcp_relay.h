/* A TCP relay for integration tests: listens on 127.0.0.1 (a free port), and relays each
 * connection to a real server, one thread per connection. On request it swallows the server's
 * replies (reads and drops them), or freezes (reads nothing), while the connections stay open:
 * what a client sees when the network between it and the server is cut, or a proxy loses a
 * session, without root or a network namespace. Not a mock: the real server does the work. */
#ifndef RAMPART_TESTS_TCP_RELAY_H
#define RAMPART_TESTS_TCP_RELAY_H

struct tcp_relay;

/* Relay to the first host:port of `url` (scheme://[user@]host:port/..., e.g. a mongodb:// or
 * amqp:// URL). NULL when the URL has no numeric IPv4 host (or localhost) or the socket
 * cannot be set up. */
struct tcp_relay *tcp_relay_start(const char *url);
unsigned short tcp_relay_port(const struct tcp_relay *r);
/* 1: from now on the server's replies are dropped; 0: relayed again. */
void tcp_relay_swallow(struct tcp_relay *r, int on);
/* 1: from now on nothing is read from either side (the connections stay open), so what a
 * client sends piles up in its kernel once the windows are full: a cut network as the
 * sender's kernel sees it. 0: relayed again. */
void tcp_relay_freeze(struct tcp_relay *r, int on);
/* Close every relayed connection and the listener; wait for the threads; free. */
void tcp_relay_stop(struct tcp_relay *r);

#endif
