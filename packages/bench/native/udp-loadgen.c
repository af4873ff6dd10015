/*
 * The UDP load generator: one connected socket to 127.0.0.1:PORT, every answer
 * checked byte for byte (an 8-byte sequence number, then a pattern of it).
 *
 *   udp-loadgen PORT pingpong|flood SIZE DURATION_S WARMUP_S WINDOW
 *
 * pingpong: one datagram in flight; RTT per answer (an answer missing for 100 ms
 * is lost and the next one goes). flood: up to WINDOW in flight, refilled as
 * answers come (what is still out after 20 ms without one is counted lost).
 * Prints one JSON line.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_SAMPLES (8 * 1000 * 1000)

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void fill(unsigned char *datagram, uint64_t seq, int size) {
  memcpy(datagram, &seq, 8);
  for (int i = 8; i < size; i++) datagram[i] = (unsigned char)(seq + i);
}

/** Whether `datagram` is a well-formed answer of `size` bytes to a sequence number below `next`. */
static int valid(const unsigned char *datagram, int length, int size, uint64_t next) {
  if (length != size) return 0;
  uint64_t seq;
  memcpy(&seq, datagram, 8);
  if (seq >= next) return 0;
  for (int i = 8; i < size; i++)
    if (datagram[i] != (unsigned char)(seq + i)) return 0;
  return 1;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: udp-loadgen PORT pingpong|flood SIZE DURATION_S WARMUP_S WINDOW\n");
    return 2;
  }
  int port = atoi(argv[1]), pingpong = strcmp(argv[2], "pingpong") == 0, size = atoi(argv[3]);
  double duration = atof(argv[4]), warmup = atof(argv[5]);
  int window = atoi(argv[6]);
  if (size < 8 || size > 65507 || window < 1) {
    fprintf(stderr, "udp-loadgen: SIZE 8 to 65507, WINDOW >= 1\n");
    return 2;
  }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int buffer = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &server.sin_addr);
  if (connect(fd, (struct sockaddr *)&server, sizeof server) != 0) {
    perror("udp-loadgen: connect");
    return 1;
  }
  static unsigned char out[65536], in[BATCH][65536];
  double *samples = pingpong ? malloc(sizeof(double) * MAX_SAMPLES) : NULL;
  long answers = 0, lost = 0, wrong = 0, sampled = 0;
  uint64_t next = 0;
  double start = now_s(), measure_from = start + warmup, end = measure_from + duration;
  struct pollfd watched = {.fd = fd, .events = POLLIN};
  if (pingpong) {
    while (now_s() < end) {
      fill(out, next++, size);
      double sent_at = now_s();
      send(fd, out, size, 0);
      for (;;) {
        if (poll(&watched, 1, 100) <= 0) {
          lost++;
          break;
        }
        ssize_t length = recv(fd, in[0], sizeof in[0], 0);
        uint64_t seq;
        memcpy(&seq, in[0], 8);
        if (length == size && seq != next - 1 && seq < next) continue; /* a late answer to a lost one */
        double at = now_s();
        if (!valid(in[0], (int)length, size, next)) wrong++;
        else if (at >= measure_from) {
          answers++;
          if (sampled < MAX_SAMPLES) samples[sampled++] = (at - sent_at) * 1e6;
        }
        break;
      }
    }
  } else {
    long outstanding = 0;
    struct iovec iov[BATCH];
    struct mmsghdr messages[BATCH];
    while (now_s() < end) {
      while (outstanding < window) {
        fill(out, next, size);
        if (send(fd, out, size, MSG_DONTWAIT) < 0) break;
        next++;
        outstanding++;
      }
      if (poll(&watched, 1, 20) <= 0) {
        lost += outstanding;
        outstanding = 0;
        continue;
      }
      for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){.iov_base = in[i], .iov_len = sizeof in[i]};
        messages[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
      }
      int received = recvmmsg(fd, messages, BATCH, MSG_DONTWAIT, NULL);
      double at = now_s();
      for (int i = 0; i < received; i++) {
        if (outstanding > 0) outstanding--;
        if (!valid(in[i], (int)messages[i].msg_len, size, next)) wrong++;
        else if (at >= measure_from) answers++;
      }
    }
  }
  double p50 = 0, p99 = 0;
  if (sampled > 0) {
    qsort(samples, sampled, sizeof(double), compare);
    p50 = samples[(long)(0.5 * (sampled - 1))];
    p99 = samples[(long)(0.99 * (sampled - 1))];
  }
  printf("{\"mode\":\"%s\",\"size\":%d,\"seconds\":%.3f,\"msgs\":%ld,\"msgs_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
         "\"sent\":%llu,\"lost\":%ld,\"wrong\":%ld}\n",
         argv[2], size, duration, answers, answers / duration, p50, p99, (unsigned long long)next, lost, wrong);
  return 0;
}
