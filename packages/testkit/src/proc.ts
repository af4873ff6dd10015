/**
 * What the kernel says about a process, read from /proc so it works the same for
 * every runtime and every peer: memory and CPU of a process or of its whole
 * process group (socat and xinetd fork a process per connection), open
 * descriptors, and the TCP connections held on a port.
 */

import { closeSync, openSync, readdirSync, readFileSync, readSync } from "node:fs";

/** Pids of every live process. */
export function allPids(): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number);
}

/**
 * The fields of /proc/PID/stat after the command name (state is [0], pgrp [2],
 * utime [11], stime [12]: proc(5) fields 3, 5, 14, 15), or undefined once the
 * process is gone.
 */
export function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** True for a process that has exited and not been reaped yet, or is gone. */
export function isZombie(pid: number): boolean {
  const state = statFields(pid)?.[0];
  return state === undefined || state === "Z";
}

/** Pids in process group `pgid` (a managed process's pid is its group id). */
export function groupMembers(pgid: number): number[] {
  return allPids().filter((pid) => {
    const fields = statFields(pid);
    return fields !== undefined && Number(fields[2]) === pgid && fields[0] !== "Z";
  });
}

/** True if every process in the group is stopped (SIGSTOP took effect), and there is one. */
export function groupStopped(pgid: number): boolean {
  const states = groupMembers(pgid).map((pid) => statFields(pid)?.[0] ?? "gone");
  return states.length > 0 && states.every((state) => state === "T");
}

/** Resident memory of a process, in bytes; throws once it is gone. */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "latin1");
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!match) throw new Error(`/proc/${pid}/status has no VmRSS (a zombie?)`);
  return Number(match[1]) * 1024;
}

/** Runs `read` on each member of a group; a member that exits meanwhile counts 0. */
function sumOverGroup(pgid: number, read: (pid: number) => number): number {
  let sum = 0;
  for (const pid of groupMembers(pgid)) {
    try {
      sum += read(pid);
    } catch {
      // Exited while we looked.
    }
  }
  return sum;
}

/** Resident memory of a whole process group, in bytes. */
export function groupRss(pgid: number): number {
  return sumOverGroup(pgid, rssOf);
}

/** Open descriptors of a process; throws once it is gone. */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Open descriptors of every process in the group. */
export function groupFds(pgid: number): number {
  return sumOverGroup(pgid, fdCount);
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

/** CPU time (user + system, in clock ticks, usually 1/100 s) of a process; throws once it is gone. */
export function cpuTicks(pid: number): number {
  const fields = statFields(pid);
  if (!fields) throw new Error(`process ${pid} is gone`);
  return Number(fields[11]) + Number(fields[12]);
}

/** CPU time of every process in the group, in clock ticks. */
export function groupCpuTicks(pgid: number): number {
  return sumOverGroup(pgid, cpuTicks);
}

export const MiB = 1024 * 1024;
