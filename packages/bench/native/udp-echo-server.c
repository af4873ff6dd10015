/*
 * The UDP limit: a minimal C UDP echo server. One thread, recvmmsg() up to 64
 * datagrams, sendmmsg() them back to their senders. No guard, no rate limit: the
 * fastest a datagram echo goes on this machine, which our servers are measured
 * against (with their limits lifted).
 *
 *   udp-echo-server [PORT]    prints {"port":P,"pid":N}; exits when stdin closes
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define MAX_DATAGRAM 65536

static char buffers[BATCH][MAX_DATAGRAM];

int main(int argc, char **argv) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(argc > 1 ? atoi(argv[1]) : 0)};
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  if (fd < 0 || bind(fd, (struct sockaddr *)&address, sizeof address) != 0) {
    perror("udp-echo-server: bind");
    return 1;
  }
  socklen_t length = sizeof address;
  getsockname(fd, (struct sockaddr *)&address, &length);
  printf("{\"port\":%d,\"pid\":%d}\n", ntohs(address.sin_port), getpid());
  fflush(stdout);
  struct iovec iov[BATCH];
  struct sockaddr_in from[BATCH];
  struct mmsghdr messages[BATCH];
  struct pollfd watched[2] = {{.fd = fd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
  for (;;) {
    if (poll(watched, 2, -1) < 0) continue;
    if (watched[1].revents) {
      char byte;
      if (read(0, &byte, 1) <= 0) return 0;
    }
    if (!(watched[0].revents & POLLIN)) continue;
    for (int i = 0; i < BATCH; i++) {
      iov[i] = (struct iovec){.iov_base = buffers[i], .iov_len = MAX_DATAGRAM};
      messages[i].msg_hdr = (struct msghdr){
          .msg_name = &from[i], .msg_namelen = sizeof from[i], .msg_iov = &iov[i], .msg_iovlen = 1};
    }
    int received = recvmmsg(fd, messages, BATCH, MSG_DONTWAIT, NULL);
    if (received <= 0) continue;
    for (int i = 0; i < received; i++) iov[i].iov_len = messages[i].msg_len;
    for (int sent = 0; sent < received;) {
      int now = sendmmsg(fd, messages + sent, received - sent, 0);
      if (now <= 0) break;
      sent += now;
    }
  }
}
