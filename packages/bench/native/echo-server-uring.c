/*
 * The higher limit: the same minimal correct TCP echo server as echo-server.c,
 * on io_uring (liburing) instead of epoll, one thread. The design of the
 * published io_uring echo servers (frevib/io_uring-echo-server): a multishot
 * accept, then per connection one operation at a time, recv into its 64 KiB
 * buffer, send it all back (a short send resubmits the rest), recv again; after
 * the peer's EOF everything received has been sent, then the close.
 *
 * usage: echo-server-uring [--host 127.0.0.1] [--port 0]
 * Prints {"port":P,"pid":N} on the first stdout line once listening, or
 * {"error":"..."} and exits 3 when the kernel does not allow io_uring
 * (kernel.io_uring_disabled, a seccomp filter, a kernel older than 5.19).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listen.h"

#define BUFFER_SIZE (64 * 1024)
#define QUEUE_DEPTH 4096

enum operation { RECEIVE, SEND, CLOSE };

typedef struct {
  int fd;
  enum operation operation;
  size_t start; /* first unsent byte in data */
  size_t end;   /* one past the last received byte */
  unsigned char data[BUFFER_SIZE];
} connection;

static struct io_uring ring;
/* The accept's user_data: no connection has address 1. */
#define ACCEPT_TAG ((void *)1)

static struct io_uring_sqe *next_sqe(void) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
  while (!sqe) {
    io_uring_submit(&ring);
    sqe = io_uring_get_sqe(&ring);
  }
  return sqe;
}

static void arm_accept(int listener) {
  struct io_uring_sqe *sqe = next_sqe();
  io_uring_prep_multishot_accept(sqe, listener, NULL, NULL, SOCK_CLOEXEC);
  io_uring_sqe_set_data(sqe, ACCEPT_TAG);
}

static void receive(connection *c) {
  c->operation = RECEIVE;
  c->start = c->end = 0;
  struct io_uring_sqe *sqe = next_sqe();
  io_uring_prep_recv(sqe, c->fd, c->data, BUFFER_SIZE, 0);
  io_uring_sqe_set_data(sqe, c);
}

static void send_rest(connection *c) {
  c->operation = SEND;
  struct io_uring_sqe *sqe = next_sqe();
  io_uring_prep_send(sqe, c->fd, c->data + c->start, c->end - c->start, MSG_NOSIGNAL);
  io_uring_sqe_set_data(sqe, c);
}

static void finish(connection *c) {
  c->operation = CLOSE;
  struct io_uring_sqe *sqe = next_sqe();
  io_uring_prep_close(sqe, c->fd);
  io_uring_sqe_set_data(sqe, c);
}

static void complete(connection *c, int result) {
  switch (c->operation) {
    case RECEIVE:
      if (result > 0) {
        c->end = (size_t)result;
        send_rest(c);
      } else if (result == -EINTR || result == -EAGAIN) {
        receive(c);
      } else {
        finish(c); /* EOF (everything received was sent already) or an error */
      }
      return;
    case SEND:
      if (result > 0) {
        c->start += (size_t)result;
        if (c->start < c->end) send_rest(c);
        else receive(c);
      } else if (result == -EINTR || result == -EAGAIN) {
        send_rest(c);
      } else {
        finish(c);
      }
      return;
    case CLOSE:
      free(c);
      return;
  }
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  struct io_uring_params params = {0};
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
  int failed = io_uring_queue_init_params(QUEUE_DEPTH, &ring, &params);
  if (failed < 0) {
    printf("{\"error\":\"io_uring is not available on this kernel: io_uring_setup: %s%s\"}\n", strerror(-failed),
           failed == -EPERM ? " (kernel.io_uring_disabled or a seccomp filter)" : "");
    return 3;
  }
  int listener = listen_on("echo-server-uring", argc, argv, 0);
  struct sockaddr_in bound;
  socklen_t length = sizeof bound;
  getsockname(listener, (struct sockaddr *)&bound, &length);
  arm_accept(listener);
  io_uring_submit(&ring);
  printf("{\"port\":%d,\"pid\":%d}\n", ntohs(bound.sin_port), (int)getpid());
  fflush(stdout);

  for (;;) {
    io_uring_submit_and_wait(&ring, 1);
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      seen++;
      void *data = io_uring_cqe_get_data(cqe);
      if (data == ACCEPT_TAG) {
        if (cqe->res >= 0) {
          int fd = cqe->res;
          int one = 1;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          connection *c = malloc(sizeof *c);
          if (!c) close(fd);
          else {
            c->fd = fd;
            receive(c);
          }
        }
        /* A multishot accept ends on an error (EMFILE and the like): arm it again. */
        if (!(cqe->flags & IORING_CQE_F_MORE)) arm_accept(listener);
        continue;
      }
      complete(data, cqe->res);
    }
    io_uring_cq_advance(&ring, seen);
  }
}
