/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * A small HTTPS client for tests/live_tls_paths.rs: the library paths of
 * TLS capture (an SSL* reused for a second connection, libssl loaded with
 * dlopen after the probe started and unloaded with dlclose, OpenSSL 1.1.1,
 * BoringSSL).  No OpenSSL header: the functions are looked up by name
 * (dlsym), so one source serves every library with the OpenSSL API.
 *
 *   tlsclient LIB PORT MODE N
 *
 * LIB: "linked" (the program was linked against libssl: its symbols are
 * looked up in the global scope) or the path of a libssl to dlopen.
 * MODE: "reuse" (one SSL* for N connections: SSL_clear + SSL_set_fd on
 * each new socket), "fresh" (a new SSL* per connection), "nofree" (one
 * connection, the SSL* never freed: it prints "holding", waits for a line
 * and exits holding it).
 * Each connection sends "GET /cI.txt" (Connection: close) and reads the
 * response to its end.
 *
 * Steps are driven by lines on stdin, so that the test can wait for the
 * probe in between: it prints "pid P", waits for a line, loads the
 * library (dlopen) and prints "loaded", waits for a line, runs the
 * connections (printing "conn I PORT BYTES" for each), frees, unloads the
 * library (dlclose) and prints "unloaded", waits for a line and exits 0.
 * Any failure: a message on stderr, exit 1.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef void *(*method_fn)(void);
typedef void *(*ctx_new_fn)(void *);
typedef void (*ctx_free_fn)(void *);
typedef void *(*ssl_new_fn)(void *);
typedef int (*ssl_int_fn)(void *);
typedef void (*ssl_void_fn)(void *);
typedef int (*set_fd_fn)(void *, int);
typedef int (*io_fn)(void *, void *, int);

static struct {
	method_fn TLS_client_method;
	ctx_new_fn SSL_CTX_new;
	ctx_free_fn SSL_CTX_free;
	ssl_new_fn SSL_new;
	ssl_void_fn SSL_free;
	ssl_int_fn SSL_clear;
	ssl_int_fn SSL_connect;
	ssl_int_fn SSL_shutdown;
	set_fd_fn SSL_set_fd;
	io_fn SSL_read;
	io_fn SSL_write;
} f;

static void die(const char *what)
{
	fprintf(stderr, "tlsclient: %s\n", what);
	exit(1);
}

static void step(void)
{
	char line[64];

	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		die("stdin closed");
}

static void *sym(void *h, const char *name)
{
	void *p = dlsym(h, name);

	if (!p) {
		fprintf(stderr, "tlsclient: no %s: %s\n", name, dlerror());
		exit(1);
	}
	return p;
}

static void load(void *h)
{
	f.TLS_client_method = (method_fn)sym(h, "TLS_client_method");
	f.SSL_CTX_new = (ctx_new_fn)sym(h, "SSL_CTX_new");
	f.SSL_CTX_free = (ctx_free_fn)sym(h, "SSL_CTX_free");
	f.SSL_new = (ssl_new_fn)sym(h, "SSL_new");
	f.SSL_free = (ssl_void_fn)sym(h, "SSL_free");
	f.SSL_clear = (ssl_int_fn)sym(h, "SSL_clear");
	f.SSL_connect = (ssl_int_fn)sym(h, "SSL_connect");
	f.SSL_shutdown = (ssl_int_fn)sym(h, "SSL_shutdown");
	f.SSL_set_fd = (set_fd_fn)sym(h, "SSL_set_fd");
	f.SSL_read = (io_fn)sym(h, "SSL_read");
	f.SSL_write = (io_fn)sym(h, "SSL_write");
}

/* One connection on `ssl`: request /cI.txt, read the response to its end. */
static void one(void *ssl, int port, int i)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct sockaddr_in me;
	socklen_t ml = sizeof(me);
	char req[256], buf[16384];
	long total = 0;
	int fd, n, len;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		die("connect");
	if (getsockname(fd, (struct sockaddr *)&me, &ml))
		die("getsockname");
	if (f.SSL_set_fd(ssl, fd) != 1)
		die("SSL_set_fd");
	if (f.SSL_connect(ssl) != 1)
		die("SSL_connect");
	len = snprintf(req, sizeof(req),
		       "GET /c%d.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", i);
	if (f.SSL_write(ssl, req, len) != len)
		die("SSL_write");
	while ((n = f.SSL_read(ssl, buf, sizeof(buf))) > 0)
		total += n;
	f.SSL_shutdown(ssl);
	close(fd);
	printf("conn %d %d %ld\n", i, ntohs(me.sin_port), total);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	void *h = NULL, *ctx, *ssl;
	int port, n;

	if (argc != 5)
		die("usage: tlsclient LIB PORT MODE N");
	port = atoi(argv[2]);
	n = atoi(argv[4]);
	printf("pid %d\n", (int)getpid());
	step();
	if (strcmp(argv[1], "linked") == 0) {
		load(RTLD_DEFAULT);
	} else {
		h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			fprintf(stderr, "tlsclient: dlopen %s: %s\n", argv[1], dlerror());
			return 1;
		}
		load(h);
	}
	printf("loaded\n");
	step();
	ctx = f.SSL_CTX_new(f.TLS_client_method());
	if (!ctx)
		die("SSL_CTX_new");
	if (strcmp(argv[3], "reuse") == 0) {
		ssl = f.SSL_new(ctx);
		if (!ssl)
			die("SSL_new");
		for (int i = 0; i < n; i++) {
			if (i > 0 && f.SSL_clear(ssl) != 1)
				die("SSL_clear");
			one(ssl, port, i);
		}
		f.SSL_free(ssl);
	} else if (strcmp(argv[3], "fresh") == 0) {
		for (int i = 0; i < n; i++) {
			ssl = f.SSL_new(ctx);
			if (!ssl)
				die("SSL_new");
			one(ssl, port, i);
			f.SSL_free(ssl);
		}
	} else if (strcmp(argv[3], "nofree") == 0) {
		ssl = f.SSL_new(ctx);
		if (!ssl)
			die("SSL_new");
		one(ssl, port, 0);
		printf("holding\n");
		step();
		_exit(0); /* no SSL_free, no atexit handlers */
	} else {
		die("MODE: reuse, fresh or nofree");
	}
	f.SSL_CTX_free(ctx);
	if (h && dlclose(h))
		die("dlclose");
	printf("unloaded\n");
	step();
	return 0;
}
