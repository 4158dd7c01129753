/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The kernel matrix's OpenSSL TLS peer: linked statically against
 * Debian's libssl.a/libcrypto.a by scripts/kernel-matrix.sh, symbols kept,
 * so that Osprey finds SSL_read/SSL_write in the executable itself (the
 * "statically linked OpenSSL" path of src/tls/elf.rs). HTTP/1.1 by hand;
 * one binary, two modes, run in the guest under two names (symlinks
 * ssltls-server, ssltls-client) so that each end has its own comm.
 *
 *   tls-openssl server PORT CERT KEY   serve 127.0.0.1:PORT (one connection
 *                                      at a time) until killed; prints
 *                                      "ready" once listening
 *   tls-openssl client PORT PATH       one GET PATH (Connection: close),
 *                                      prints the response; exit 1 unless
 *                                      it is a 200
 *
 * Every response is "HTTP/1.1 200 OK" with the body BODY PATH "\n".
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define BODY "osprey-matrix tls hello from openssl: "

static void die(const char *what)
{
	fprintf(stderr, "tls-openssl: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* One connection: read the request head, answer it, close. */
static void serve(SSL_CTX *ctx, int fd)
{
	char req[4096], path[256] = "/", resp[1024], body[512];
	struct timeval tmo = { .tv_sec = 2 };
	int n, len = 0, blen;
	SSL *ssl = SSL_new(ctx);

	if (!ssl)
		die("SSL_new");
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1) {
		ERR_print_errors_fp(stderr);
		goto out;
	}
	while (len < (int)sizeof(req) - 1 && !strstr(req, "\r\n\r\n")) {
		n = SSL_read(ssl, req + len, sizeof(req) - 1 - len);
		if (n <= 0)
			goto out;
		len += n;
		req[len] = 0;
	}
	sscanf(req, "%*s %255s", path);
	blen = snprintf(body, sizeof(body), BODY "%s\n", path);
	/* one SSL_write: headers and body in one TLS record */
	n = snprintf(resp, sizeof(resp),
		     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
		     "Connection: close\r\n\r\n%s", blen, body);
	SSL_write(ssl, resp, n);
	SSL_shutdown(ssl);
	/* until the client closes: closing with its bytes unread would reset
	 * the connection (at most 2 s) */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
	while (recv(fd, req, sizeof(req), 0) > 0)
		;
out:
	SSL_free(ssl);
	close(fd);
}

static void __attribute__((noreturn)) server(int port, const char *cert, const char *key)
{
	struct sockaddr_in a = loopback(port);
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	int one = 1, l;

	if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		die("certificate");
	l = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 16))
		die("listen");
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		/* blocking: in the guest this accept() is already waiting when
		 * osprey attaches, so the connection it returns is one whose
		 * accept enter the probe never saw (the BTF-less fallback once
		 * missed such a connection entirely) */
		int fd = accept(l, NULL, NULL);

		if (fd < 0)
			die("accept");
		serve(ctx, fd);
	}
}

static int client(int port, const char *path)
{
	struct sockaddr_in a = loopback(port);
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char req[512], buf[4096];
	int fd, n, len, total = 0, ok = 0;
	SSL *ssl;

	if (!ctx || !(ssl = SSL_new(ctx)))
		die("SSL_new");
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		die("connect");
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1)
		die("SSL_connect");
	len = snprintf(req, sizeof(req),
		       "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", path);
	if (SSL_write(ssl, req, len) != len)
		die("SSL_write");
	while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0) {
		if (total == 0)
			ok = n >= 13 && memcmp(buf, "HTTP/1.1 200 ", 13) == 0;
		fwrite(buf, 1, n, stdout);
		total += n;
	}
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
	SSL_CTX_free(ctx);
	if (!ok)
		die("not a 200");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "server") == 0)
		server(atoi(argv[2]), argv[3], argv[4]);
	if (argc == 4 && strcmp(argv[1], "client") == 0)
		return client(atoi(argv[2]), argv[3]);
	die("usage: tls-openssl server PORT CERT KEY | client PORT PATH");
	return 1;
}
