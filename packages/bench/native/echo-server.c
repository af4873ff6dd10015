/*
 * The limit: a minimal correct TCP echo server (RFC 862) on epoll, one thread.
 *
 * Correct means what every server in the benchmark must do: nonblocking
 * sockets, a partial write keeps the unsent rest (and stops reading from that
 * peer until it is flushed, so a peer that never reads costs one buffer), and
 * after the peer's EOF everything received is written back before the close.
 *
 * usage: echo-server [--host 127.0.0.1] [--port 0]
 * Prints {"port":P,"pid":N} on the first stdout line once listening.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listen.h"

#define BUFFER_SIZE (64 * 1024)

typedef struct {
  int fd;
  int peer_ended;
  size_t start; /* first unsent byte in data */
  size_t end;   /* one past the last received byte */
  unsigned char data[BUFFER_SIZE];
} connection;

static int epoll_fd;

static void watch(connection *c, int op) {
  struct epoll_event event = {0};
  /* Read only while there is room; write only while something is unsent. */
  if (!c->peer_ended && c->end < BUFFER_SIZE) event.events |= EPOLLIN;
  if (c->start < c->end) event.events |= EPOLLOUT;
  event.data.ptr = c;
  epoll_ctl(epoll_fd, op, c->fd, &event);
}

static void drop(connection *c) {
  epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c);
}

/* Returns 0 when the connection is finished or failed (and freed). */
static int flush(connection *c) {
  while (c->start < c->end) {
    ssize_t n = write(c->fd, c->data + c->start, c->end - c->start);
    if (n > 0) {
      c->start += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return 1;
    } else {
      drop(c);
      return 0;
    }
  }
  c->start = c->end = 0;
  if (c->peer_ended) {
    drop(c);
    return 0;
  }
  return 1;
}

static void service(connection *c, unsigned events) {
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    while (!c->peer_ended && c->end < BUFFER_SIZE) {
      ssize_t n = read(c->fd, c->data + c->end, BUFFER_SIZE - c->end);
      if (n > 0) {
        c->end += (size_t)n;
      } else if (n == 0) {
        c->peer_ended = 1;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        break;
      } else {
        drop(c);
        return;
      }
    }
  }
  if (!flush(c)) return;
  watch(c, EPOLL_CTL_MOD);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  int listener = listen_on("echo-server", argc, argv, SOCK_NONBLOCK);
  struct sockaddr_in bound;
  socklen_t length = sizeof bound;
  getsockname(listener, (struct sockaddr *)&bound, &length);
  printf("{\"port\":%d,\"pid\":%d}\n", ntohs(bound.sin_port), (int)getpid());
  fflush(stdout);

  epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event accept_event = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &accept_event);
  struct epoll_event events[256];
  for (;;) {
    int ready = epoll_wait(epoll_fd, events, 256, -1);
    for (int i = 0; i < ready; i++) {
      connection *c = events[i].data.ptr;
      if (c) {
        service(c, events[i].events);
        continue;
      }
      for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break; /* EAGAIN, or EMFILE: the listener stays readable and is retried */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c = malloc(sizeof *c);
        if (!c) {
          close(fd);
          continue;
        }
        c->fd = fd;
        c->peer_ended = 0;
        c->start = c->end = 0;
        watch(c, EPOLL_CTL_ADD);
      }
    }
  }
}
