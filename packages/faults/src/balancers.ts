/**
 * Real load balancers in front of our servers, for the tests that prove the
 * PROXY protocol end to end: HAProxy (`mode tcp`, `send-proxy-v2`, a health
 * check that is an echo) and nginx's stream module (`proxy_protocol on`, v1).
 * Each runs in the foreground from a config generated into a temp dir, as a
 * managed process (own group, hard timeout). The configs are the ones the
 * root README's "Operating at scale" section shows.
 */

import { existsSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { type ManagedProcess, spawnManaged } from "@tcp-echo/testkit";
import { freePort, tempDir } from "@tcp-echo/testkit/fixtures";

export interface Backend {
  readonly name: string;
  readonly port: number;
}

export interface Balancer {
  /** Where clients connect. */
  readonly port: number;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

/** The Debian binaries (`haproxy`, `nginx-full`); `.ci/run` installs them. */
export const HAPROXY = "/usr/sbin/haproxy";
export const NGINX = "/usr/sbin/nginx";
/** Debian's nginx-full loads the stream module dynamically. */
const NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";

/** Why a balancer cannot run here, or undefined. */
export function missingBalancer(which: "haproxy" | "nginx"): string | undefined {
  if (which === "haproxy") return existsSync(HAPROXY) ? undefined : `${HAPROXY} is missing: apt-get install haproxy`;
  if (!existsSync(NGINX)) return `${NGINX} is missing: apt-get install nginx-full`;
  return existsSync(NGINX_STREAM_MODULE) ? undefined : `${NGINX_STREAM_MODULE} is missing: apt-get install nginx-full`;
}

/** The health check's probe: a line our echo servers send back unchanged. */
export const CHECK_PROBE = "tcp-echo-health";

/**
 * HAProxy in TCP mode: round robin over `backends`, each sent a PROXY v2 header
 * (health checks too: `check-send-proxy`, which HAProxy sends as `LOCAL`), and a
 * health check every `checkInterval` ms that sends the probe and expects it back.
 * A connection to a dead backend is retried on another (`option redispatch`).
 * Without `proxyProtocol` the bytes are forwarded as they are, so any echo server (a peer,
 * the negative control) can be a backend; without `healthCheck` none is made, so a check's
 * connection never takes one of a backend's `--max-connections` (`pnpm matrix --via`, one backend).
 */
export function haproxyConfig(options: {
  port: number;
  backends: readonly Backend[];
  checkInterval: number;
  stats: string;
  proxyProtocol?: boolean;
  healthCheck?: boolean;
}): string {
  const { port, backends, checkInterval, stats, proxyProtocol = true, healthCheck = true } = options;
  const check = healthCheck
    ? ` check${proxyProtocol ? " check-send-proxy" : ""} inter ${checkInterval}ms fall 1 rise 1`
    : "";
  const server = `${proxyProtocol ? " send-proxy-v2" : ""}${check}`;
  return `global
  # The select poller, not epoll: HAProxy 2.6.12 (Debian 12's) on epoll or poll cuts a
  # half-closed client's upload short on a loaded machine. A 16 MiB half-close through it,
  # node servers, two busy loops on 2 cores: 1 in 100 to 10 in 150 rounds failed (8 runs),
  # HAProxy's log saying "up=15201119" of 16777216 bytes with termination state "--"
  # (normal). The pcap had all 16 MiB and the FIN reach HAProxy's socket; strace had no
  # short read and no read of 0 on it, yet HAProxy shut the server side (which saw a
  # clean, short EOF) and closed the client with bytes unread (an RST, ECONNRESET). That
  # is a read0 taken from a stale HUP flag (EPOLLRDHUP) while the socket is not marked
  # readable, the path at the top of raw_sock_to_buf; the same path at connect is
  # https://github.com/haproxy/haproxy/issues/1863. select reports no HUP: 0 of 800
  # rounds failed (4 runs). It caps descriptors at FD_SETSIZE (1024), two per connection:
  # maxconn 500 is refused ("No polling mechanism available"), 490 leaves room for the
  # listener, the stats socket and the checks; more connections wait in the backlog.
  # A deployment that needs more runs epoll, and should first check its own HAProxy
  # with a half-closed upload under load.
  noepoll
  nopoll
  maxconn 490
  stats socket ${stats} mode 600 level admin

defaults
  mode tcp
  timeout connect 2s
  # Without it a check's whole timeout is its \`inter\` (100 ms here): with \`fall 1\` one
  # answer later than that, from a backend slowed by a loaded machine, marked it DOWN and
  # sent every new connection to the other one (a CI run did). With it the check still
  # connects within min(connect, inter) and a dead backend still fails at once (refused),
  # but a live one has this long to answer.
  # https://docs.haproxy.org/2.6/configuration.html#4.2-timeout%20check
  timeout check 2s
  timeout client 60s
  timeout server 60s
  # In TCP mode HAProxy forwards a FIN as a FIN (a half-close) by default: no option is
  # needed. Once one direction is shut, a side's inactivity timeout is client-fin /
  # server-fin instead of client / server: as long, so a half-closed echo that is slow
  # to drain is not cut. https://docs.haproxy.org/2.6/configuration.html#4.2-timeout%20client-fin
  timeout client-fin 60s
  timeout server-fin 60s
  retries 3
  option redispatch

frontend echo
  bind 127.0.0.1:${port}
  default_backend echo_servers

backend echo_servers
  balance roundrobin
${
  healthCheck
    ? `  option tcp-check
  tcp-check send ${CHECK_PROBE}
  tcp-check expect string ${CHECK_PROBE}
`
    : ""
}${backends.map(({ name, port: backendPort }) => `  server ${name} 127.0.0.1:${backendPort}${server}`).join("\n")}
`;
}

/** nginx's stream module: round robin over `backends`, a PROXY v1 line on each connection. */
export function nginxConfig(options: {
  port: number;
  backends: readonly Backend[];
  dir: string;
  proxyProtocol?: boolean;
}): string {
  const { port, backends, dir, proxyProtocol = true } = options;
  return `load_module ${NGINX_STREAM_MODULE};
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }

stream {
  upstream echo_servers {
${backends.map(({ port: backendPort }) => `    server 127.0.0.1:${backendPort};`).join("\n")}
  }
  server {
    listen 127.0.0.1:${port};
    proxy_pass echo_servers;
    proxy_protocol ${proxyProtocol ? "on" : "off"};
    # Keep the client's half-close a half-close (nginx >= 1.21.4), so the echo can drain; without
    # it nginx closes both sides at the client's FIN. https://nginx.org/en/docs/stream/ngx_stream_proxy_module.html#proxy_half_close
    proxy_half_close on;
    proxy_timeout 60s;
  }
}
`;
}

/** Waits until something accepts on `port`, or throws naming `what` after `timeoutMs`. */
async function accepting(port: number, what: ManagedProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    if (what.exit) throw new Error(`${what.label} exited (${JSON.stringify(what.exit)}): ${what.stderrTail()}`);
    if (Date.now() > deadline) throw new Error(`${what.label} not accepting on ${port} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** How a balancer is started: what it forwards, and its hard timeout (a backstop: the tests' runs are far shorter). */
export interface BalancerOptions {
  /** Send each connection a PROXY header (HAProxy v2, nginx v1). @default true */
  readonly proxyProtocol?: boolean;
  /** HAProxy: check each backend with an echo of `CHECK_PROBE`. @default true */
  readonly healthCheck?: boolean;
  /** @default 120000 */
  readonly lifetimeMs?: number;
}

/** Runs a balancer in the foreground until it accepts on `port`; `stop` kills it and removes its temp dir. */
async function launch(
  binary: string,
  args: string[],
  port: number,
  dir: string,
  lifetimeMs = 120_000,
): Promise<Omit<Balancer, "port">> {
  const process = spawnManaged(binary, args, { label: binary.split("/").pop() as string, timeoutMs: lifetimeMs });
  const remove = () => rmSync(dir, { recursive: true, force: true });
  // A run stopped by a signal (the testkit's handlers exit) leaves no config or socket behind.
  globalThis.process.once("exit", remove);
  const stop = async () => {
    await process.kill();
    globalThis.process.removeListener("exit", remove);
    remove();
  };
  try {
    await accepting(port, process, 10_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { process, stop };
}

export interface HaproxyBalancer extends Balancer {
  /** A runtime command on the admin socket (`show stat`). */
  command(line: string): Promise<string>;
  /** Waits until HAProxy reports `server` in `status` (`UP`, `DOWN`), bounded. */
  waitFor(server: string, status: "UP" | "DOWN", timeoutMs: number): Promise<void>;
}

export async function startHaproxy(
  backends: readonly Backend[],
  checkInterval = 100,
  { proxyProtocol, healthCheck, lifetimeMs }: BalancerOptions = {},
): Promise<HaproxyBalancer> {
  const dir = tempDir("haproxy-");
  const port = await freePort();
  const stats = join(dir, "admin.sock");
  const config = join(dir, "haproxy.cfg");
  writeFileSync(config, haproxyConfig({ port, backends, checkInterval, stats, proxyProtocol, healthCheck }));
  // -db: foreground, no daemon; -f: this config only.
  const { process, stop } = await launch(HAPROXY, ["-db", "-f", config], port, dir, lifetimeMs);
  const command = (line: string) =>
    new Promise<string>((resolve, reject) => {
      let text = "";
      const socket = net.connect({ path: stats }, () => socket.end(`${line}\n`));
      socket.setEncoding("utf8");
      socket.on("data", (data: string) => {
        text += data;
      });
      socket.once("end", () => resolve(text));
      socket.once("error", reject);
    });
  return {
    port,
    process,
    stop,
    command,
    async waitFor(server, status, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let last = "";
      while (Date.now() < deadline) {
        // `show stat` CSV: pxname,svname,...; the 18th field is status.
        const row = (await command("show stat")).split("\n").find((line) => line.startsWith(`echo_servers,${server},`));
        last = row?.split(",")[17] ?? "no such server";
        if (last === status) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(`haproxy: ${server} is ${last}, not ${status}, after ${timeoutMs} ms`);
    },
  };
}

export async function startNginx(
  backends: readonly Backend[],
  { proxyProtocol, lifetimeMs }: BalancerOptions = {},
): Promise<Balancer> {
  const dir = tempDir("nginx-");
  const port = await freePort();
  const config = join(dir, "nginx.conf");
  writeFileSync(config, nginxConfig({ port, backends, dir, proxyProtocol }));
  // -p: a prefix of our own (temp paths), -e: no write to /var/log before the config is read.
  const args = ["-p", dir, "-e", join(dir, "error.log"), "-c", config, "-g", "daemon off;"];
  return { port, ...(await launch(NGINX, args, port, dir, lifetimeMs)) };
}
