/**
 * The native half of the bench: compiling the C load generator and the C echo
 * servers (epoll, and io_uring where liburing is installed), and the UDP pair, with the machine's
 * `cc`, and describing the machine the run was on.
 */

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { BUILD_DIR, NATIVE_DIR } from "./paths.ts";

export interface NativeBinaries {
  readonly loadgen: string;
  readonly echoServer: string;
  /** The io_uring server, or why it could not be built (liburing-dev missing). */
  readonly uringServer: { readonly binary: string } | { readonly missing: string };
  /** The UDP pair: `udp-loadgen.c` and `udp-echo-server.c` (recvmmsg/sendmmsg). */
  readonly udpLoadgen: string;
  readonly udpEchoServer: string;
}

/** Compiles each C file unless its binary is newer than the source and the header the servers share. */
export function buildNative(): NativeBinaries {
  mkdirSync(BUILD_DIR, { recursive: true });
  const header = statSync(join(NATIVE_DIR, "listen.h")).mtimeMs;
  const compile = (name: string, libraries: string[] = [], hint = "a C compiler is needed: apt-get install gcc") => {
    const source = join(NATIVE_DIR, `${name}.c`);
    const binary = join(BUILD_DIR, name);
    if (!existsSync(binary) || statSync(binary).mtimeMs < Math.max(statSync(source).mtimeMs, header)) {
      try {
        execFileSync("cc", ["-O2", "-Wall", "-o", binary, source, ...libraries], { stdio: ["ignore", "pipe", "pipe"] });
      } catch (error) {
        const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? "";
        throw new Error(`cc -O2 ${source} failed (${hint})\n${stderr}`);
      }
    }
    return binary;
  };
  let uringServer: NativeBinaries["uringServer"];
  try {
    uringServer = {
      binary: compile("echo-server-uring", ["-luring"], "liburing is needed: apt-get install liburing-dev"),
    };
  } catch (error) {
    uringServer = { missing: (error as Error).message.split("\n")[0] as string };
  }
  return {
    loadgen: compile("loadgen"),
    echoServer: compile("echo-server"),
    uringServer,
    udpLoadgen: compile("udp-loadgen"),
    udpEchoServer: compile("udp-echo-server"),
  };
}

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGB: number;
  readonly kernel: string;
  readonly cc: string;
}

export function describeMachine(): Machine {
  const cpus = os.cpus();
  let cc = "unknown";
  try {
    cc = execFileSync("cc", ["--version"], { encoding: "utf8" }).split("\n")[0] ?? cc;
  } catch {
    // Reported as unknown; buildNative fails with the real reason.
  }
  return {
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    cc,
  };
}

/** The load generator prints one JSON line; anything else is an error. */
export function parseLoadgen(stdout: string): Record<string, unknown> | undefined {
  const line = stdout.trim().split("\n").pop();
  if (!line) return undefined;
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

/** Whether `taskset` can pin to two different cores here. */
export function canPin(): boolean {
  if (os.cpus().length < 2) return false;
  try {
    execFileSync("taskset", ["-c", "1", "true"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
