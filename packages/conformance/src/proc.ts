/**
 * What the kernel says about a server, read from /proc so it works the same for
 * every runtime and every peer: memory of its whole process group (socat and
 * xinetd fork a process per connection), open descriptors, and the TCP
 * connections it holds on its port.
 */

import { readdirSync, readFileSync } from "node:fs";

/** Pids in process group `pgid` (a managed process's pid is its group id). */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "latin1");
      // The command name may contain spaces and parentheses: fields start after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === pgid && fields[0] !== "Z") members.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  return members;
}

/** Resident memory of a process, in bytes (0 if it is gone). */
export function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "latin1");
    const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Resident memory of a whole process group, in bytes. */
export function groupRss(pgid: number): number {
  return groupMembers(pgid).reduce((sum, pid) => sum + rssOf(pid), 0);
}

/** Open descriptors of every process in the group. */
export function groupFds(pgid: number): number {
  let count = 0;
  for (const pid of groupMembers(pgid)) {
    try {
      count += readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      // Exited while we looked.
    }
  }
  return count;
}

/** TCP states (include/net/tcp_states.h) in which an application still holds the socket open. */
const HELD = new Set(["01" /* ESTABLISHED */, "08" /* CLOSE_WAIT */]);

/**
 * Connections the server still holds on `port`: sockets whose local port is
 * `port` and that the application has not closed yet. Listening sockets and
 * connections the kernel finishes alone (TIME_WAIT, LAST_ACK) do not count.
 */
export function heldConnections(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  let count = 0;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "latin1");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      const state = fields[3];
      if (local?.endsWith(`:${hexPort}`) && state && HELD.has(state)) count++;
    }
  }
  return count;
}

/** CPU time (user + system, in clock ticks, usually 1/100 s) of every process in the group. */
export function groupCpuTicks(pgid: number): number {
  let ticks = 0;
  for (const pid of groupMembers(pgid)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      // Fields after the command name: state is [0], utime [11], stime [12] (proc(5) fields 14 and 15).
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // Exited while we looked.
    }
  }
  return ticks;
}
