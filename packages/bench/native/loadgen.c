/*
 * Load generator for TCP echo servers: one thread, epoll, every echoed byte
 * checked against a per-connection pseudo-random pattern.
 *
 * Modes:
 *   pipelined  C connections, each keeping D messages of S bytes in flight;
 *              RTT is measured per message (D=1, C=1 is ping-pong)
 *   bulk       C connections writing S-byte chunks as fast as the server takes them
 *   churn      C connections at a time, each: connect, echo S bytes, half-close,
 *              read to EOF, close; a "message" is one whole connection
 *   flood      write --bytes without reading until done or stalled (no progress
 *              for --stall ms), then read everything back; samples server RSS
 *   idle       open C connections, echo 1 byte on each, hold them; reports the
 *              server's RSS growth per connection
 *
 * Output: one JSON line on stdout. Exit 0 when every byte matched and no
 * connection failed, 1 otherwise, 2 on usage errors, 3 on the hard timeout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The pattern: a prime-length random table, so no power-of-two slip can line up. */
#define PATTERN_LENGTH 1048573u
#define MAX_CHUNK (256 * 1024)
/* RTT histogram: 100 ns buckets up to 100 ms; slower samples land in the last bucket. */
#define BUCKET_NS 100
#define BUCKETS 1000000

enum mode { PIPELINED, BULK, CHURN, FLOOD, IDLE };
enum state { CONNECTING, OPEN, HALF_CLOSED, CLOSED };

typedef struct {
  int fd;
  int state;
  uint64_t stream; /* where this connection starts in the pattern */
  uint64_t sent;
  uint64_t received;
  uint64_t allowed; /* bytes this connection may have sent so far */
  uint64_t completed;
  uint64_t opened_ns;
  uint64_t *stamps; /* send time of each in-flight message, by index % depth */
  uint32_t watching;
} connection;

static struct {
  enum mode mode;
  const char *host;
  int port;
  int connections;
  size_t size;
  int depth;
  double duration;
  double warmup;
  uint64_t flood_bytes;
  int stall_ms;
  int server_pid;
  double timeout;
  uint64_t seed;
} options = {PIPELINED, "127.0.0.1", 0, 1, 64, 1, 3, 1, 200u << 20, 1000, 0, 0, 1};

static unsigned char *pattern; /* PATTERN_LENGTH + MAX_CHUNK, the tail repeats the head */
static struct sockaddr_in server;
static int epoll_fd;
static connection *connections;
static uint32_t *histogram;
static uint64_t deadline_ns;

static struct {
  int measuring;
  uint64_t messages;
  uint64_t bytes;
  uint64_t rtt_count;
  uint64_t rtt_max_ns;
  uint64_t errors;
  uint64_t wrong_bytes;
  uint64_t serial; /* churn: connections opened so far, for their pattern offset */
  long rss_idle_kb;
  long rss_peak_kb;
  long rss_after_kb;
  uint64_t flood_written;
  int flood_stalled;
  double flood_readback_s;
  int idle_open;
  char first_error[160];
} run;

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t splitmix(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static uint64_t stream_start(uint64_t serial) {
  uint64_t state = options.seed ^ (serial * 0x2545f4914f6cdd1du);
  return splitmix(&state) % PATTERN_LENGTH;
}

static void note_error(const char *what, int error) {
  run.errors++;
  if (!run.first_error[0])
    snprintf(run.first_error, sizeof run.first_error, "%s: %s", what, error ? strerror(error) : "unexpected");
}

/* The server's resident set in KiB, or -1 when no pid was given or it is gone. */
static long server_rss_kb(void) {
  if (!options.server_pid) return -1;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/statm", options.server_pid);
  FILE *file = fopen(path, "r");
  if (!file) return -1;
  long size = 0, resident = -1;
  if (fscanf(file, "%ld %ld", &size, &resident) != 2) resident = -1;
  fclose(file);
  return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void sample_rss(void) {
  long rss = server_rss_kb();
  if (rss > run.rss_peak_kb) run.rss_peak_kb = rss;
}

static void check_deadline(void) {
  if (now_ns() < deadline_ns) return;
  printf("{\"error\":\"hard timeout after %.1f s\",\"mode\":%d}\n", options.timeout, (int)options.mode);
  fflush(stdout);
  exit(3);
}

/* --- pattern ----------------------------------------------------------- */

static const unsigned char *expected(const connection *c, uint64_t position) {
  return pattern + (c->stream + position) % PATTERN_LENGTH;
}

/* Checks `n` received bytes at the connection's receive position; returns 0 on any wrong byte. */
static int verify(connection *c, const unsigned char *data, size_t n) {
  uint64_t extra = 0;
  if (c->received + n > c->sent) {
    extra = c->received + n - c->sent;
    n -= (size_t)extra;
  }
  uint64_t wrong = extra;
  if (memcmp(data, expected(c, c->received), n) != 0) {
    const unsigned char *want = expected(c, c->received);
    for (size_t i = 0; i < n; i++) wrong += data[i] != want[i];
  }
  if (!wrong) return 1;
  run.wrong_bytes += wrong;
  if (!run.first_error[0])
    snprintf(run.first_error, sizeof run.first_error,
             extra ? "echo has %llu bytes more than was sent" : "echo differs from what was sent (%llu bytes)",
             (unsigned long long)wrong);
  return 0;
}

/* --- sockets ----------------------------------------------------------- */

static void watch(connection *c, uint32_t events) {
  if (c->watching == events) return;
  struct epoll_event event = {.events = events, .data.ptr = c};
  epoll_ctl(epoll_fd, c->watching ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &event);
  c->watching = events;
}

static int open_socket(int nonblocking) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}


/* Connects with a bounded wait; returns the fd or -1. */
static int dial_blocking(int timeout_ms) {
  int fd = open_socket(1);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&server, sizeof server) < 0 && errno != EINPROGRESS) {
    int error = errno;
    close(fd);
    errno = error;
    return -1;
  }
  struct pollfd wait_for = {.fd = fd, .events = POLLOUT};
  int error = 0;
  socklen_t length = sizeof error;
  if (poll(&wait_for, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0 || error) {
    close(fd);
    errno = error ? error : ETIMEDOUT;
    return -1;
  }
  return fd;
}

static void close_connection(connection *c) {
  if (c->state == CLOSED) return;
  epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->state = CLOSED;
  c->watching = 0;
}

/* Writes up to `allowed`; returns 0 if the connection failed. */
static int send_pending(connection *c) {
  while (c->sent < c->allowed) {
    uint64_t want = c->allowed - c->sent;
    size_t chunk = want < (uint64_t)MAX_CHUNK ? (size_t)want : MAX_CHUNK;
    ssize_t n = write(c->fd, expected(c, c->sent), chunk);
    if (n > 0) {
      c->sent += (uint64_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return 1;
    } else {
      note_error("write", errno);
      close_connection(c);
      return 0;
    }
  }
  return 1;
}

static void record_rtt(uint64_t rtt) {
  uint64_t bucket = rtt / BUCKET_NS;
  histogram[bucket < BUCKETS ? bucket : BUCKETS - 1]++;
  if (rtt > run.rtt_max_ns) run.rtt_max_ns = rtt;
  run.rtt_count++;
}

/* --- pipelined and bulk ------------------------------------------------- */

static void stream_ready(connection *c, uint32_t events, unsigned char *buffer) {
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
    for (;;) {
      ssize_t n = read(c->fd, buffer, MAX_CHUNK);
      if (n > 0) {
        if (!verify(c, buffer, (size_t)n)) {
          close_connection(c);
          return;
        }
        c->received += (uint64_t)n;
        if (run.measuring) run.bytes += (uint64_t)n;
        uint64_t now = options.mode == PIPELINED ? now_ns() : 0;
        while (c->received >= (c->completed + 1) * options.size) {
          if (options.mode == PIPELINED) {
            if (run.measuring) record_rtt(now - c->stamps[c->completed % options.depth]);
            c->stamps[c->completed % options.depth] = now;
            c->allowed += options.size;
          }
          c->completed++;
          if (run.measuring) run.messages++;
        }
      } else if (n == 0) {
        note_error("read", 0);
        snprintf(run.first_error, sizeof run.first_error, "the server closed a connection mid-stream");
        close_connection(c);
        return;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        break;
      } else {
        note_error("read", errno);
        close_connection(c);
        return;
      }
    }
  }
  if (!send_pending(c)) return;
  watch(c, EPOLLIN | (c->sent < c->allowed ? EPOLLOUT : 0));
}

/* --- churn -------------------------------------------------------------- */

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/*
 * Churn leaves each closed connection in TIME_WAIT on this side (we send the
 * first FIN) for 60 s. At 13,000 connections/s one run uses up the 28,000
 * ephemeral ports of one source address, and the server measured next paid for
 * it in connect()'s port search: whichever server ran right after the C server
 * measured slow. Against a loopback server, spread connections over 250 source
 * addresses (127.0.0.2-251), the port picked at connect() time for the whole
 * 4-tuple (IP_BIND_ADDRESS_NO_PORT).
 */
static void spread_source(int fd, uint64_t serial) {
  if ((ntohl(server.sin_addr.s_addr) >> 24) != 127) return;
  int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  struct sockaddr_in local;
  memset(&local, 0, sizeof local);
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)(2 + serial % 250));
  if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) note_error("bind", errno);
}

static void churn_open(connection *c) {
  c->fd = open_socket(1);
  if (c->fd < 0) {
    note_error("socket", errno);
    c->state = CLOSED;
    return;
  }
  spread_source(c->fd, run.serial);
  c->stream = stream_start(run.serial++);
  c->sent = c->received = c->completed = 0;
  c->allowed = options.size;
  c->opened_ns = now_ns();
  c->state = CONNECTING;
  c->watching = 0;
  if (connect(c->fd, (struct sockaddr *)&server, sizeof server) < 0 && errno != EINPROGRESS) {
    note_error("connect", errno);
    close(c->fd);
    c->state = CLOSED;
    return;
  }
  struct epoll_event event = {.events = EPOLLOUT, .data.ptr = c};
  epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &event);
  c->watching = EPOLLOUT;
}

static void churn_ready(connection *c, uint32_t events, unsigned char *buffer) {
  if (c->state == CONNECTING) {
    int error = 0;
    socklen_t length = sizeof error;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error) {
      note_error("connect", error);
      close_connection(c);
      return;
    }
    c->state = OPEN;
  }
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
    for (;;) {
      ssize_t n = read(c->fd, buffer, MAX_CHUNK);
      if (n > 0) {
        if (!verify(c, buffer, (size_t)n)) {
          close_connection(c);
          return;
        }
        c->received += (uint64_t)n;
        if (c->received == options.size && c->state == OPEN) {
          shutdown(c->fd, SHUT_WR);
          c->state = HALF_CLOSED;
        }
      } else if (n == 0) {
        if (c->received != options.size || c->state != HALF_CLOSED) {
          note_error("read", 0);
          snprintf(run.first_error, sizeof run.first_error, "EOF after %llu of %zu echoed bytes",
                   (unsigned long long)c->received, options.size);
        } else if (run.measuring) {
          record_rtt(now_ns() - c->opened_ns);
          run.messages++;
          run.bytes += options.size;
        }
        close_connection(c);
        return;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        break;
      } else {
        note_error("read", errno);
        close_connection(c);
        return;
      }
    }
  }
  if (!send_pending(c)) return;
  watch(c, EPOLLIN | (c->sent < c->allowed ? EPOLLOUT : 0));
}

/* --- the timed loop ----------------------------------------------------- */

static void timed_run(void) {
  unsigned char *buffer = malloc(MAX_CHUNK);
  run.rss_idle_kb = run.rss_peak_kb = server_rss_kb();
  for (int i = 0; i < options.connections; i++) {
    connection *c = &connections[i];
    if (options.mode == CHURN) {
      churn_open(c);
      continue;
    }
    c->fd = dial_blocking(5000);
    if (c->fd < 0) {
      note_error("connect", errno);
      c->state = CLOSED;
      continue;
    }
    c->state = OPEN;
    c->stream = stream_start((uint64_t)i);
    c->allowed = options.mode == BULK ? UINT64_MAX : options.size * (uint64_t)options.depth;
    if (options.mode == PIPELINED) {
      c->stamps = calloc((size_t)options.depth, sizeof *c->stamps);
      uint64_t now = now_ns();
      for (int d = 0; d < options.depth; d++) c->stamps[d] = now;
    }
    if (send_pending(c)) watch(c, EPOLLIN | (c->sent < c->allowed ? EPOLLOUT : 0));
  }
  uint64_t start = now_ns();
  uint64_t measure_from = start + (uint64_t)(options.warmup * 1e9);
  uint64_t end = measure_from + (uint64_t)(options.duration * 1e9);
  struct epoll_event events[512];
  uint64_t last_sample = start;
  for (;;) {
    uint64_t now = now_ns();
    if (now >= end) break;
    if (now - last_sample >= 100000000u) {
      sample_rss();
      last_sample = now;
    }
    if (!run.measuring && now >= measure_from) {
      run.measuring = 1;
      run.messages = run.bytes = run.rtt_count = run.rtt_max_ns = 0;
      memset(histogram, 0, BUCKETS * sizeof *histogram);
    }
    int live = 0;
    for (int i = 0; i < options.connections; i++) {
      if (connections[i].state != CLOSED) live = 1;
      else if (options.mode == CHURN && run.errors < 1000) {
        churn_open(&connections[i]);
        live = 1;
      }
    }
    if (!live) break;
    int ready = epoll_wait(epoll_fd, events, 512, 5);
    for (int i = 0; i < ready; i++) {
      connection *c = events[i].data.ptr;
      if (c->state == CLOSED) continue;
      if (options.mode == CHURN) churn_ready(c, events[i].events, buffer);
      else stream_ready(c, events[i].events, buffer);
    }
  }
  double seconds = (double)(now_ns() - (run.measuring ? measure_from : start)) / 1e9;
  run.measuring = 0;
  for (int i = 0; i < options.connections; i++) close_connection(&connections[i]);
  free(buffer);
  printf(",\"seconds\":%.3f", seconds);
  printf(",\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f", (double)run.messages / seconds,
         (double)run.bytes / seconds / 1e6);
}

/* --- flood -------------------------------------------------------------- */

static void flood(void) {
  connection *c = &connections[0];
  run.rss_idle_kb = run.rss_peak_kb = server_rss_kb();
  c->fd = dial_blocking(5000);
  if (c->fd < 0) {
    note_error("connect", errno);
    return;
  }
  c->state = OPEN;
  c->stream = stream_start(0);
  c->allowed = options.flood_bytes;
  uint64_t last_progress = now_ns();
  uint64_t last_sample = 0;
  while (c->sent < c->allowed) {
    check_deadline();
    uint64_t before = c->sent;
    if (!send_pending(c)) return;
    uint64_t now = now_ns();
    if (c->sent > before) last_progress = now;
    else if (now - last_progress >= (uint64_t)options.stall_ms * 1000000u) {
      run.flood_stalled = 1;
      break;
    }
    if (now - last_sample >= 2000000u) {
      sample_rss();
      last_sample = now;
    }
    struct pollfd wait_for = {.fd = c->fd, .events = POLLOUT};
    poll(&wait_for, 1, 2);
  }
  run.flood_written = c->sent;
  sample_rss();
  /* Read back everything, then half-close and expect EOF (and nothing more). */
  uint64_t readback_start = now_ns();
  unsigned char *buffer = malloc(MAX_CHUNK);
  shutdown(c->fd, SHUT_WR);
  for (;;) {
    check_deadline();
    struct pollfd wait_for = {.fd = c->fd, .events = POLLIN};
    if (poll(&wait_for, 1, 10) == 0) continue;
    ssize_t n = read(c->fd, buffer, MAX_CHUNK);
    if (n > 0) {
      if (!verify(c, buffer, (size_t)n)) break;
      c->received += (uint64_t)n;
      sample_rss();
    } else if (n == 0) {
      if (c->received != c->sent) {
        note_error("read", 0);
        snprintf(run.first_error, sizeof run.first_error, "EOF after %llu of %llu echoed bytes",
                 (unsigned long long)c->received, (unsigned long long)c->sent);
      }
      break;
    } else if (errno != EINTR && errno != EAGAIN) {
      note_error("read", errno);
      break;
    }
  }
  run.flood_readback_s = (double)(now_ns() - readback_start) / 1e9;
  free(buffer);
  close(c->fd);
  c->state = CLOSED;
  printf(",\"flood_bytes\":%llu,\"written_before_stall\":%llu,\"stalled\":%s,\"echoed\":%llu,\"readback_s\":%.3f",
         (unsigned long long)options.flood_bytes, (unsigned long long)run.flood_written,
         run.flood_stalled ? "true" : "false", (unsigned long long)c->received, run.flood_readback_s);
}

/* --- idle --------------------------------------------------------------- */

static void idle(void) {
  unsigned char byte;
  run.rss_idle_kb = run.rss_peak_kb = server_rss_kb();
  for (int i = 0; i < options.connections; i++) {
    check_deadline();
    connection *c = &connections[i];
    c->fd = dial_blocking(5000);
    if (c->fd < 0) {
      note_error("connect", errno);
      break;
    }
    c->state = OPEN;
    c->stream = stream_start((uint64_t)i);
    c->allowed = 1;
    if (write(c->fd, expected(c, 0), 1) != 1) {
      note_error("write", errno);
      break;
    }
    c->sent = 1;
    struct pollfd wait_for = {.fd = c->fd, .events = POLLIN};
    if (poll(&wait_for, 1, 10000) != 1 || read(c->fd, &byte, 1) != 1) {
      note_error("read", errno);
      break;
    }
    if (!verify(c, &byte, 1)) break;
    c->received = 1;
    run.idle_open++;
    if (i % 256 == 0) sample_rss();
  }
  usleep(500000);
  run.rss_after_kb = server_rss_kb();
  sample_rss();
  for (int i = 0; i < options.connections; i++)
    if (connections[i].state == OPEN) {
      close(connections[i].fd);
      connections[i].state = CLOSED;
    }
  double per = run.idle_open ? (double)(run.rss_after_kb - run.rss_idle_kb) * 1024 / run.idle_open : 0;
  printf(",\"open\":%d,\"rss_after_kb\":%ld,\"bytes_per_conn\":%.0f", run.idle_open, run.rss_after_kb, per);
}

/* --- main --------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen --port P [--host 127.0.0.1] [--mode pipelined|bulk|churn|flood|idle]\n"
          "               [--conns C] [--size S] [--depth D] [--duration SEC] [--warmup SEC]\n"
          "               [--bytes N] [--stall MS] [--pid SERVER_PID] [--timeout SEC] [--seed N]\n");
  exit(2);
}

int main(int argc, char **argv) {
  static const struct option long_options[] = {
      {"host", required_argument, 0, 'h'},   {"port", required_argument, 0, 'p'},
      {"mode", required_argument, 0, 'm'},   {"conns", required_argument, 0, 'c'},
      {"size", required_argument, 0, 's'},   {"depth", required_argument, 0, 'd'},
      {"duration", required_argument, 0, 't'}, {"warmup", required_argument, 0, 'w'},
      {"bytes", required_argument, 0, 'b'},  {"stall", required_argument, 0, 'S'},
      {"pid", required_argument, 0, 'P'},    {"timeout", required_argument, 0, 'T'},
      {"seed", required_argument, 0, 'r'},   {0, 0, 0, 0}};
  const char *mode = "pipelined";
  int option;
  while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
    switch (option) {
      case 'h': options.host = optarg; break;
      case 'p': options.port = atoi(optarg); break;
      case 'm': mode = optarg; break;
      case 'c': options.connections = atoi(optarg); break;
      case 's': options.size = (size_t)strtoull(optarg, NULL, 10); break;
      case 'd': options.depth = atoi(optarg); break;
      case 't': options.duration = atof(optarg); break;
      case 'w': options.warmup = atof(optarg); break;
      case 'b': options.flood_bytes = strtoull(optarg, NULL, 10); break;
      case 'S': options.stall_ms = atoi(optarg); break;
      case 'P': options.server_pid = atoi(optarg); break;
      case 'T': options.timeout = atof(optarg); break;
      case 'r': options.seed = strtoull(optarg, NULL, 10); break;
      default: usage();
    }
  }
  if (!strcmp(mode, "pipelined")) options.mode = PIPELINED;
  else if (!strcmp(mode, "bulk")) options.mode = BULK;
  else if (!strcmp(mode, "churn")) options.mode = CHURN;
  else if (!strcmp(mode, "flood")) options.mode = FLOOD;
  else if (!strcmp(mode, "idle")) options.mode = IDLE;
  else usage();
  if (options.port <= 0 || options.port > 65535 || options.connections < 1 || options.size < 1 ||
      options.depth < 1 || options.duration <= 0 || options.warmup < 0)
    usage();
  server.sin_family = AF_INET;
  server.sin_port = htons((unsigned short)options.port);
  if (inet_pton(AF_INET, options.host, &server.sin_addr) != 1) usage();
  if (options.timeout <= 0) options.timeout = options.duration + options.warmup + 60;
  deadline_ns = now_ns() + (uint64_t)(options.timeout * 1e9);
  signal(SIGPIPE, SIG_IGN);

  pattern = malloc(PATTERN_LENGTH + MAX_CHUNK);
  uint64_t state = options.seed;
  for (size_t i = 0; i < PATTERN_LENGTH; i += 8) {
    uint64_t value = splitmix(&state);
    memcpy(pattern + i, &value, 8);
  }
  memcpy(pattern + PATTERN_LENGTH, pattern, MAX_CHUNK);
  connections = calloc((size_t)options.connections, sizeof *connections);
  histogram = calloc(BUCKETS, sizeof *histogram);
  epoll_fd = epoll_create1(EPOLL_CLOEXEC);

  printf("{\"mode\":\"%s\",\"conns\":%d,\"size\":%zu,\"depth\":%d", mode, options.connections, options.size,
         options.depth);
  if (options.mode == FLOOD) flood();
  else if (options.mode == IDLE) idle();
  else timed_run();

  double p50 = 0, p99 = 0;
  uint64_t seen = 0;
  for (int i = 0; i < BUCKETS && run.rtt_count; i++) {
    uint64_t before = seen;
    seen += histogram[i];
    double bucket_us = (double)(i + 1) * BUCKET_NS / 1000;
    if (before < (run.rtt_count + 1) / 2 && seen >= (run.rtt_count + 1) / 2) p50 = bucket_us;
    if (before < (run.rtt_count * 99 + 99) / 100 && seen >= (run.rtt_count * 99 + 99) / 100) p99 = bucket_us;
  }
  printf(",\"msgs\":%llu,\"bytes\":%llu,\"rtt_us\":{\"count\":%llu,\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}",
         (unsigned long long)run.messages, (unsigned long long)run.bytes, (unsigned long long)run.rtt_count, p50,
         p99, (double)run.rtt_max_ns / 1000);
  printf(",\"rss_idle_kb\":%ld,\"rss_peak_kb\":%ld", run.rss_idle_kb, run.rss_peak_kb);
  printf(",\"errors\":%llu,\"wrong_bytes\":%llu", (unsigned long long)run.errors,
         (unsigned long long)run.wrong_bytes);
  if (run.first_error[0]) {
    printf(",\"first_error\":\"");
    for (const char *p = run.first_error; *p; p++)
      if (*p != '"' && *p != '\\') putchar(*p);
    printf("\"");
  }
  printf("}\n");
  return run.wrong_bytes || run.errors ? 1 : 0;
}
