/*
 * The listening socket both C echo servers open, from their `--host H --port P`
 * arguments (default 127.0.0.1, port 0): IPv4, SO_REUSEADDR, a backlog of 4096.
 * `flags` is added to the socket type (SOCK_NONBLOCK for epoll). Exits 2 on a
 * host that is not an IPv4 address, 1 when the bind fails.
 */
#ifndef ECHO_LISTEN_H
#define ECHO_LISTEN_H
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int listen_on(const char *program, int argc, char **argv, int flags) {
  const char *host = "127.0.0.1";
  int port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--host")) host = argv[i + 1];
    else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
  }
  struct sockaddr_in address = {0};
  address.sin_family = AF_INET;
  address.sin_port = htons((unsigned short)port);
  if (inet_pton(AF_INET, host, &address.sin_addr) != 1) {
    fprintf(stderr, "%s: invalid IPv4 host %s\n", program, host);
    exit(2);
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0 || listen(fd, 4096) < 0) {
    fprintf(stderr, "%s: bind %s:%d: %s\n", program, host, port, strerror(errno));
    exit(1);
  }
  return fd;
}
#endif
