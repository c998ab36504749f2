/* SPDX-License-Identifier: MIT
 * bench_plugin_load.c - MQTT v5 load generator for bench_plugin.py: one publisher and one
 * subscriber over raw sockets on 127.0.0.1, messages read from a prepared file.
 * Measures only; it judges nothing and prints one JSON line of figures.
 *
 * Message file: records of u16be topic length, topic, u32be payload length, payload.
 * Modes:
 *   throughput: pipeline every record as a QoS 1 PUBLISH (at most --window unacknowledged),
 *               count PUBACK reason codes and deliveries to the subscriber.
 *   latency:    one record at a time; time from sending it to its delivery at the subscriber
 *               (QoS 1 publish, QoS 1 subscription), then report median, p99, mean. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "bench_util.h"

struct rec {
	const uint8_t *topic;
	size_t topic_len;
	const uint8_t *payload;
	size_t payload_len;
};

struct conn {
	int fd;
	uint8_t *in;
	size_t in_len;
	size_t in_cap;
};

struct opts {
	int port;
	const char *file;
	const char *mode;
	const char *pub_user;
	const char *sub_user;
	const char *sub_filter;
	long window;
	double drain;
};

static void die(const char *what)
{
	fprintf(stderr, "bench_plugin_load: %s: %s\n", what, strerror(errno));
	exit(3);
}

static long parse_long(const char *s)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0') {
		return -1;
	}
	return v;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_plugin_load --port P --file MSGS --mode throughput|latency\n"
	                "       [--pub-user U] [--sub-user U] [--sub-filter F] [--window N] "
	                "[--drain SECONDS]\n"
	                "(a helper of bench_plugin; see tests/bench/bench_plugin.py)\n");
	exit(3);
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0;
	size_t n = 0;

	if (f == NULL) {
		die(path);
	}
	for (;;) {
		if (cap - n < 65536) {
			cap = cap ? cap * 2 : 1u << 20;
			buf = realloc(buf, cap);
			if (buf == NULL) {
				die("realloc");
			}
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			break;
		}
	}
	fclose(f);
	*len = n;
	return buf;
}

static struct rec *parse_records(const uint8_t *buf, size_t len, size_t *count)
{
	size_t cap = 1024;
	size_t n = 0;
	size_t off = 0;
	struct rec *r = malloc(cap * sizeof *r);

	if (r == NULL) {
		die("malloc");
	}
	while (len - off >= 2) {
		size_t tl = (size_t)buf[off] << 8 | buf[off + 1];
		off += 2;
		if (len - off < tl + 4) {
			break;
		}
		const uint8_t *t = buf + off;
		off += tl;
		size_t pl = (size_t)buf[off] << 24 | (size_t)buf[off + 1] << 16 |
		            (size_t)buf[off + 2] << 8 | buf[off + 3];
		off += 4;
		if (len - off < pl) {
			break;
		}
		if (n == cap) {
			cap *= 2;
			r = realloc(r, cap * sizeof *r);
			if (r == NULL) {
				die("realloc");
			}
		}
		r[n].topic = t;
		r[n].topic_len = tl;
		r[n].payload = buf + off;
		r[n].payload_len = pl;
		off += pl;
		n++;
	}
	*count = n;
	return r;
}

static size_t put_varint(uint8_t *out, size_t v)
{
	size_t n = 0;
	do {
		uint8_t b = (uint8_t)(v % 128);
		v /= 128;
		if (v > 0) {
			b |= 0x80;
		}
		out[n++] = b;
	} while (v > 0);
	return n;
}

static void send_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR) {
				continue;
			}
			die("send");
		}
		p += w;
		len -= (size_t)w;
	}
}

/* Read what is available (blocking once if block is set). 0 on EOF. */
static int conn_read(struct conn *c)
{
	if (c->in_cap - c->in_len < 65536) {
		c->in_cap = c->in_cap ? c->in_cap * 2 : 1u << 18;
		c->in = realloc(c->in, c->in_cap);
		if (c->in == NULL) {
			die("realloc");
		}
	}
	ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
	if (r < 0) {
		if (errno == EINTR || errno == EAGAIN) {
			return 1;
		}
		die("recv");
	}
	if (r == 0) {
		return 0;
	}
	c->in_len += (size_t)r;
	return 1;
}

/* Take one packet from c->in at *pos: returns 1 and sets first, body and blen, or 0 if the
 * packet is incomplete. body stays valid until the next conn_consume. */
static int conn_packet(struct conn *c, size_t *pos, uint8_t *first, const uint8_t **body,
                       size_t *blen)
{
	size_t p = *pos;
	size_t mult = 1;
	size_t n = 0;
	size_t i;

	if (c->in_len - p < 2) {
		return 0;
	}
	for (i = 1; i < 5; i++) {
		if (p + i >= c->in_len) {
			return 0;
		}
		uint8_t b = c->in[p + i];
		n += (size_t)(b & 0x7F) * mult;
		mult *= 128;
		if ((b & 0x80) == 0) {
			break;
		}
	}
	i++;
	if (c->in_len - p < i + n) {
		return 0;
	}
	*first = c->in[p];
	*body = c->in + p + i;
	*blen = n;
	*pos = p + i + n;
	return 1;
}

static void conn_consume(struct conn *c, size_t pos)
{
	memmove(c->in, c->in + pos, c->in_len - pos);
	c->in_len -= pos;
}

static size_t put_str(uint8_t *out, const char *s)
{
	size_t l = strlen(s);
	out[0] = (uint8_t)(l >> 8);
	out[1] = (uint8_t)l;
	memcpy(out + 2, s, l);
	return l + 2;
}

static void mqtt_connect(struct conn *c, int port, const char *client_id, const char *user)
{
	struct sockaddr_in a;
	uint8_t pkt[1024];
	uint8_t body[1000];
	size_t bl = 0;
	int one = 1;

	memset(c, 0, sizeof *c);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0) {
		die("socket");
	}
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
		die("connect");
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	bl += put_str(body + bl, "MQTT");
	body[bl++] = 5;
	body[bl++] = (uint8_t)(0x02 | (user ? 0x80 : 0));
	body[bl++] = 0;
	body[bl++] = 120; /* keepalive */
	body[bl++] = 0;   /* no properties */
	bl += put_str(body + bl, client_id);
	if (user) {
		bl += put_str(body + bl, user);
	}
	pkt[0] = 0x10;
	size_t hl = 1 + put_varint(pkt + 1, bl);
	memcpy(pkt + hl, body, bl);
	send_all(c->fd, pkt, hl + bl);
	for (;;) {
		size_t pos = 0;
		uint8_t first;
		const uint8_t *b;
		size_t n;
		if (conn_packet(c, &pos, &first, &b, &n)) {
			if ((first >> 4) != 2 || n < 2 || b[1] != 0) {
				fprintf(stderr, "bench_plugin_load: CONNACK refused\n");
				exit(3);
			}
			conn_consume(c, pos);
			return;
		}
		if (!conn_read(c)) {
			fprintf(stderr, "bench_plugin_load: closed during CONNECT\n");
			exit(3);
		}
	}
}

static void mqtt_subscribe(struct conn *c, const char *filter, int qos)
{
	uint8_t pkt[600];
	uint8_t body[560];
	size_t bl = 0;

	body[bl++] = 0;
	body[bl++] = 1; /* packet id */
	body[bl++] = 0; /* no properties */
	bl += put_str(body + bl, filter);
	body[bl++] = (uint8_t)qos;
	pkt[0] = 0x82;
	size_t hl = 1 + put_varint(pkt + 1, bl);
	memcpy(pkt + hl, body, bl);
	send_all(c->fd, pkt, hl + bl);
	for (;;) {
		size_t pos = 0;
		uint8_t first;
		const uint8_t *b;
		size_t n;
		if (conn_packet(c, &pos, &first, &b, &n)) {
			if ((first >> 4) == 9) {
				if (b[n - 1] >= 0x80) {
					fprintf(stderr, "bench_plugin_load: SUBACK refused %s\n", filter);
					exit(3);
				}
				conn_consume(c, pos);
				return;
			}
			conn_consume(c, pos);
			continue;
		}
		if (!conn_read(c)) {
			fprintf(stderr, "bench_plugin_load: closed during SUBSCRIBE\n");
			exit(3);
		}
	}
}

/* One PUBLISH packet (QoS 1, packet id mid) into out; returns its length. */
static size_t build_publish(uint8_t *out, const struct rec *r, uint16_t mid)
{
	size_t rl = 2 + r->topic_len + 2 + 1 + r->payload_len;
	size_t n = 0;
	out[n++] = 0x32;
	n += put_varint(out + n, rl);
	out[n++] = (uint8_t)(r->topic_len >> 8);
	out[n++] = (uint8_t)r->topic_len;
	memcpy(out + n, r->topic, r->topic_len);
	n += r->topic_len;
	out[n++] = (uint8_t)(mid >> 8);
	out[n++] = (uint8_t)mid;
	out[n++] = 0; /* no properties */
	memcpy(out + n, r->payload, r->payload_len);
	return n + r->payload_len;
}

struct counts {
	size_t acked;
	size_t ok;
	size_t denied;
	size_t other;
	size_t delivered;
	int pub_closed;
};

/* Drain the publisher's socket: count PUBACKs. */
static void pub_drain(struct conn *c, struct counts *k)
{
	size_t pos = 0;
	uint8_t first;
	const uint8_t *b;
	size_t n;

	while (conn_packet(c, &pos, &first, &b, &n)) {
		if ((first >> 4) == 4) {
			uint8_t rc = n > 2 ? b[2] : 0;
			k->acked++;
			if (rc == 0x00 || rc == 0x10) {
				k->ok++;
			} else if (rc == 0x87) {
				k->denied++;
			} else {
				k->other++;
			}
		} else if ((first >> 4) == 14) {
			k->pub_closed = 1;
		}
	}
	conn_consume(c, pos);
}

/* Drain the subscriber's socket: count PUBLISHes (acknowledging QoS 1 ones). */
static void sub_drain(struct conn *c, struct counts *k)
{
	size_t pos = 0;
	uint8_t first;
	const uint8_t *b;
	size_t n;
	uint8_t acks[4096];
	size_t al = 0;

	while (conn_packet(c, &pos, &first, &b, &n)) {
		if ((first >> 4) == 3) {
			k->delivered++;
			if (((first >> 1) & 3) == 1) {
				size_t tl = (size_t)b[0] << 8 | b[1];
				if (al + 4 > sizeof acks) {
					send_all(c->fd, acks, al);
					al = 0;
				}
				acks[al++] = 0x40;
				acks[al++] = 2;
				acks[al++] = b[2 + tl];
				acks[al++] = b[3 + tl];
			}
		}
	}
	if (al > 0) {
		send_all(c->fd, acks, al);
	}
	conn_consume(c, pos);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a;
	double y = *(const double *)b;
	return (x > y) - (x < y);
}

static void run_throughput(const struct opts *o, const struct rec *r, size_t count)
{
	struct conn pub;
	struct conn sub;
	struct counts k;
	uint8_t *out = NULL;
	size_t out_cap = 0;
	size_t sent = 0;
	double t0;
	double t_ack = 0;
	double t_last_delivery = 0;
	double t_end;

	memset(&k, 0, sizeof k);
	mqtt_connect(&sub, o->port, "bench-sub", o->sub_user);
	if (o->sub_filter) {
		mqtt_subscribe(&sub, o->sub_filter, 0);
	}
	mqtt_connect(&pub, o->port, "bench-pub", o->pub_user);
	t0 = now_s();
	t_end = 0;
	for (;;) {
		/* send up to the window */
		size_t ol = 0;
		while (sent < count && (long)(sent - k.acked) < o->window && ol < (1u << 20)) {
			size_t need = r[sent].topic_len + r[sent].payload_len + 16;
			if (out_cap - ol < need) {
				out_cap = (out_cap + need) * 2;
				out = realloc(out, out_cap);
				if (out == NULL) {
					die("realloc");
				}
			}
			ol += build_publish(out + ol, &r[sent], (uint16_t)(sent % 65535 + 1));
			sent++;
		}
		if (ol > 0) {
			send_all(pub.fd, out, ol);
		}
		struct pollfd p[2] = {{pub.fd, POLLIN, 0}, {sub.fd, POLLIN, 0}};
		int pr = poll(p, 2, 100);
		if (pr < 0 && errno != EINTR) {
			die("poll");
		}
		if (p[0].revents) {
			if (!conn_read(&pub)) {
				k.pub_closed = 1;
			}
			pub_drain(&pub, &k);
			if (k.acked == count && t_ack == 0) {
				t_ack = now_s();
			}
		}
		if (p[1].revents) {
			if (conn_read(&sub)) {
				size_t before = k.delivered;
				sub_drain(&sub, &k);
				if (k.delivered != before) {
					t_last_delivery = now_s();
				}
			}
		}
		if (k.pub_closed) {
			break;
		}
		if (t_ack != 0) {
			if (t_end == 0) {
				t_end = now_s() + o->drain;
			}
			if (k.delivered >= count || now_s() > t_end) {
				break;
			}
		}
		if (now_s() - t0 > 600) {
			break;
		}
	}
	printf("{\"n\":%zu,\"t_ack\":%.6f,\"t_deliver\":%.6f,\"ok\":%zu,\"denied\":%zu,"
	       "\"other\":%zu,\"acked\":%zu,\"delivered\":%zu,\"closed\":%d}\n",
	       count, t_ack > 0 ? t_ack - t0 : -1.0, t_last_delivery > 0 ? t_last_delivery - t0 : -1.0,
	       k.ok, k.denied, k.other, k.acked, k.delivered, k.pub_closed);
	free(out);
	close(pub.fd);
	close(sub.fd);
	free(pub.in);
	free(sub.in);
}

static void run_latency(const struct opts *o, const struct rec *r, size_t count)
{
	struct conn pub;
	struct conn sub;
	struct counts k;
	double *lat = calloc(count ? count : 1, sizeof *lat);
	size_t nlat = 0;
	uint8_t pkt[70000];

	if (lat == NULL) {
		die("calloc");
	}
	memset(&k, 0, sizeof k);
	mqtt_connect(&sub, o->port, "bench-sub", o->sub_user);
	mqtt_subscribe(&sub, o->sub_filter ? o->sub_filter : "#", 1);
	mqtt_connect(&pub, o->port, "bench-pub", o->pub_user);
	for (size_t i = 0; i < count; i++) {
		if (r[i].payload_len + r[i].topic_len + 16 > sizeof pkt) {
			continue;
		}
		size_t before = k.delivered;
		size_t acked = k.acked;
		size_t pl = build_publish(pkt, &r[i], (uint16_t)(i % 65535 + 1));
		double t0 = now_s();
		send_all(pub.fd, pkt, pl);
		double t_del = 0;
		while (t_del == 0 || k.acked == acked) {
			struct pollfd p[2] = {{pub.fd, POLLIN, 0}, {sub.fd, POLLIN, 0}};
			int pr = poll(p, 2, 2000);
			if (pr == 0) {
				break; /* lost: not counted */
			}
			if (p[0].revents) {
				if (!conn_read(&pub)) {
					k.pub_closed = 1;
					break;
				}
				pub_drain(&pub, &k);
			}
			if (p[1].revents && conn_read(&sub)) {
				sub_drain(&sub, &k);
				if (k.delivered > before && t_del == 0) {
					t_del = now_s();
				}
			}
		}
		if (t_del > 0) {
			lat[nlat++] = (t_del - t0) * 1e6;
		}
		if (k.pub_closed) {
			break;
		}
	}
	qsort(lat, nlat, sizeof *lat, cmp_double);
	double sum = 0;
	size_t over_1ms = 0;
	for (size_t i = 0; i < nlat; i++) {
		sum += lat[i];
		if (lat[i] > 1000.0) {
			over_1ms++;
		}
	}
	printf("{\"n\":%zu,\"measured\":%zu,\"median_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f,"
	       "\"ok\":%zu,\"denied\":%zu,\"over_1ms\":%zu}\n",
	       count, nlat, nlat ? lat[nlat / 2] : -1.0,
	       nlat ? lat[(size_t)((double)nlat * 0.99)] : -1.0, nlat ? sum / (double)nlat : -1.0, k.ok,
	       k.denied, over_1ms);
	free(lat);
	close(pub.fd);
	close(sub.fd);
	free(pub.in);
	free(sub.in);
}

int main(int argc, char **argv)
{
	struct opts o;
	size_t len = 0;
	size_t count = 0;

	memset(&o, 0, sizeof o);
	o.window = 1000;
	o.drain = 2.0;
	if (argc < 2) {
		usage();
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc) {
			usage();
		}
		const char *v = argv[++i];
		if (strcmp(a, "--port") == 0) {
			o.port = (int)parse_long(v);
		} else if (strcmp(a, "--file") == 0) {
			o.file = v;
		} else if (strcmp(a, "--mode") == 0) {
			o.mode = v;
		} else if (strcmp(a, "--pub-user") == 0) {
			o.pub_user = v;
		} else if (strcmp(a, "--sub-user") == 0) {
			o.sub_user = v;
		} else if (strcmp(a, "--sub-filter") == 0) {
			o.sub_filter = v;
		} else if (strcmp(a, "--window") == 0) {
			o.window = parse_long(v);
		} else if (strcmp(a, "--drain") == 0) {
			char *end = NULL;
			o.drain = strtod(v, &end);
			if (end == v || *end != '\0') {
				usage();
			}
		} else {
			usage();
		}
	}
	if (o.port <= 0 || o.file == NULL || o.mode == NULL || o.window <= 0) {
		usage();
	}
	uint8_t *buf = read_file(o.file, &len);
	struct rec *r = parse_records(buf, len, &count);
	if (strcmp(o.mode, "throughput") == 0) {
		run_throughput(&o, r, count);
	} else if (strcmp(o.mode, "latency") == 0) {
		run_latency(&o, r, count);
	} else {
		usage();
	}
	free(r);
	free(buf);
	return 0;
}
