/**
 * What the kernel says about a server, read from /proc so it works the same for
 * every runtime and every peer: memory of its whole process group (socat and
 * xinetd fork a process per connection), open descriptors, and the TCP
 * connections it holds on its port.
 */

import { closeSync, openSync, readdirSync, readFileSync, readSync } from "node:fs";

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

/** True if every process in the group is stopped (SIGSTOP took effect), and there is one. */
export function groupStopped(pgid: number): boolean {
  const states = groupMembers(pgid).map((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    } catch {
      return "gone";
    }
  });
  return states.length > 0 && states.every((state) => state === "T");
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
  return socketsOn(port).filter((fields) => HELD.has(fields[3] ?? "")).length;
}

/** The rows of /proc/net/tcp and tcp6 whose local port is `port`, split into fields. */
function socketsOn(port: number, listening = false): string[][] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const rows: string[][] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const fields of listening ? listeningRows(table) : tableRows(table)) {
      if (fields[1]?.endsWith(`:${hexPort}`)) rows.push(fields);
    }
  }
  return rows;
}

function tableRows(table: string): string[][] {
  let text: string;
  try {
    text = readFileSync(table, "latin1");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/));
}

/**
 * Only the listening sockets' rows, which the kernel lists first: reading stops
 * at the first other row, since a busy machine's table can hold tens of
 * thousands of TIME_WAIT rows after them (8 MB, 0.4 s a read, seen here).
 */
function listeningRows(table: string): string[][] {
  let fd: number;
  try {
    fd = openSync(table, "r");
  } catch {
    return [];
  }
  const rows: string[][] = [];
  const chunk = Buffer.alloc(64 * 1024);
  let rest = "";
  try {
    for (let read = readSync(fd, chunk); read > 0; read = readSync(fd, chunk)) {
      const lines = (rest + chunk.toString("latin1", 0, read)).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) {
        const fields = line.trim().split(/\s+/);
        if (fields[0] === "sl") continue;
        if (fields[3] !== "0A" /* LISTEN */) return rows;
        rows.push(fields);
      }
    }
    return rows;
  } finally {
    closeSync(fd);
  }
}

/**
 * Connections waiting in the accept queue of whatever listens on `port`: for a
 * listening socket the kernel reports that queue's length as its rx_queue.
 */
export function acceptQueue(port: number): number {
  let waiting = 0;
  for (const fields of socketsOn(port, true)) waiting += Number.parseInt(fields[4]?.split(":")[1] ?? "0", 16);
  return waiting;
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
