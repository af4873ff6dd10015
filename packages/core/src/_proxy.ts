/**
 * The PROXY protocol, receiving side (HAProxy's doc/proxy-protocol.txt,
 * versions 1 and 2): a balancer in front of the server starts every connection
 * with a header naming the original client. Three parts:
 *
 * - `ProxyHeaderParser`, sans-IO: bytes in, a header (and the bytes after it)
 *   out, whatever the split across reads, down to one byte at a time. It never
 *   reads a clock or touches a socket.
 * - Trust: `parseTrustList` and `isTrusted`, CIDR blocks for `proxyFrom`. A
 *   header is only believed from a balancer we trust.
 * - `ProxyGate`, the `SocketEvents` a server gives a connection until its header
 *   is in: it holds every byte back (nothing is echoed before the header, and the
 *   header never is), then hands the connection to the echo with the client's
 *   address, and from then on passes each event straight through.
 */

import { EchoError, echoError } from "./_errors.ts";
import { isIPv4, isIPv6 } from "./_options.ts";
import type { SocketEvents, SocketIO } from "./_protocol.ts";
import type { ConnectionInfo, SocketAddress } from "./types.ts";

// --- the header -------------------------------------------------------------

/**
 * A parsed header. `source` and `destination` are the original connection's
 * ends (client, and the address it connected to); absent when the header says
 * to keep the real endpoints: a v2 `LOCAL` (the balancer's own health check), a
 * v1 `UNKNOWN`, or a v2 family this TCP server does not map (`UNSPEC`, UDP,
 * `AF_UNIX`: the spec lets a receiver fall back to the real endpoints for these).
 */
export interface ProxyHeader {
  readonly version: 1 | 2;
  readonly source?: SocketAddress;
  readonly destination?: SocketAddress;
}

export type ParseResult =
  | { readonly kind: "more" }
  | { readonly kind: "header"; readonly header: ProxyHeader; readonly rest: Uint8Array }
  | { readonly kind: "invalid"; readonly reason: string };

/** "PROXY " */
const V1_PREFIX = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20];
/** The longest v1 line, CRLF included ("PROXY UNKNOWN" with two full IPv6 addresses and ports). */
export const V1_MAX_LENGTH = 107;
export const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
/** Signature, version/command, family/protocol, 2-byte length. */
const V2_FIXED_LENGTH = 16;
/** v2 address block size by family, for the PROXY command: AF_INET, AF_INET6, AF_UNIX. */
const V2_ADDRESS_LENGTH: Record<number, number> = { 1: 12, 2: 36, 3: 216 };
const CR = 0x0d;
const LF = 0x0a;
const MORE: ParseResult = { kind: "more" };

/**
 * Collects bytes until a whole header is in. `push` each chunk as it arrives;
 * once it returns `header` or `invalid` the parser is done and must not be
 * pushed to again. Bytes are copied only while a header is split across reads.
 */
export class ProxyHeaderParser {
  private buffer: Uint8Array | undefined;
  private length = 0;

  push(chunk: Uint8Array): ParseResult {
    let data = chunk;
    if (this.length > 0) {
      this.append(chunk);
      data = (this.buffer as Uint8Array).subarray(0, this.length);
    }
    const result = parseProxyHeader(data);
    if (result.kind === "more" && this.length === 0) this.append(chunk);
    if (result.kind !== "more") this.buffer = undefined;
    return result;
  }

  private append(chunk: Uint8Array): void {
    const needed = this.length + chunk.byteLength;
    if (!this.buffer || this.buffer.byteLength < needed) {
      const grown = new Uint8Array(Math.max(needed, 2 * (this.buffer?.byteLength ?? 64)));
      if (this.buffer) grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.buffer.set(chunk, this.length);
    this.length = needed;
  }
}

/**
 * Parses a header at the start of `data`: `more` while what is there is a valid
 * start of one, `invalid` as soon as it cannot be (the spec asks receivers to
 * abort as early as possible), else the header and the bytes after it.
 */
export function parseProxyHeader(data: Uint8Array): ParseResult {
  if (data.byteLength === 0) return MORE;
  if (data[0] === V1_PREFIX[0]) return parseV1(data);
  if (data[0] === V2_SIGNATURE[0]) return parseV2(data);
  return invalid(`it starts with byte 0x${hex(data[0])}, not "PROXY" (v1) or the v2 signature`);
}

function parseV1(data: Uint8Array): ParseResult {
  const prefix = Math.min(data.byteLength, V1_PREFIX.length);
  for (let i = 0; i < prefix; i++)
    if (data[i] !== V1_PREFIX[i]) return invalid(`byte ${i} is 0x${hex(data[i])} in what began as "PROXY "`);
  let end = -1;
  const scan = Math.min(data.byteLength, V1_MAX_LENGTH);
  for (let i = 0; i < scan; i++) {
    const byte = data[i] as number;
    if (byte === LF) {
      if (data[i - 1] !== CR) return invalid("a v1 line must end with CRLF, not a lone LF");
      end = i + 1;
      break;
    }
    if (byte === CR && i + 1 < data.byteLength && data[i + 1] !== LF)
      return invalid("a v1 line must end with CRLF, not a lone CR");
  }
  if (end < 0) return data.byteLength >= V1_MAX_LENGTH ? invalid(`no CRLF in the first ${V1_MAX_LENGTH} bytes`) : MORE;
  const line = String.fromCharCode(...data.subarray(V1_PREFIX.length, end - 2));
  const rest = data.subarray(end);
  const fields = line.split(" ");
  // UNKNOWN: "the receiver must ignore anything presented before the CRLF" and keep the real endpoints.
  if (fields[0] === "UNKNOWN") return { kind: "header", header: { version: 1 }, rest };
  if (fields[0] !== "TCP4" && fields[0] !== "TCP6")
    return invalid(`unknown v1 protocol ${JSON.stringify(fields[0])} (TCP4, TCP6 or UNKNOWN)`);
  if (fields.length !== 5) return invalid(`a ${fields[0]} line has 5 fields separated by one space each`);
  const [protocol, source, destination, sourcePort, destinationPort] = fields as [
    string,
    string,
    string,
    string,
    string,
  ];
  const family = protocol === "TCP4" ? "IPv4" : "IPv6";
  const from = v1Address(source, family);
  const to = v1Address(destination, family);
  const fromPort = v1Port(sourcePort);
  const toPort = v1Port(destinationPort);
  if (from === undefined || to === undefined) return invalid(`${protocol} addresses must be ${family} addresses`);
  if (fromPort === undefined || toPort === undefined)
    return invalid("ports must be decimal integers from 0 to 65535 without leading zeros");
  return {
    kind: "header",
    header: {
      version: 1,
      source: { transport: "tcp", hostname: from, port: fromPort, family },
      destination: { transport: "tcp", hostname: to, port: toPort, family },
    },
    rest,
  };
}

/** An address of the line's family in canonical form, or undefined. IPv4 forbids leading zeros (they read as octal). */
function v1Address(text: string, family: "IPv4" | "IPv6"): string | undefined {
  if (family === "IPv4") return isIPv4(text) ? text : undefined;
  if (text.includes("%")) return undefined;
  const bytes = isIPv6(text) ? ipv6Bytes(text) : undefined;
  return bytes ? formatIPv6(bytes) : undefined;
}

function v1Port(text: string): number | undefined {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

function parseV2(data: Uint8Array): ParseResult {
  const prefix = Math.min(data.byteLength, V2_SIGNATURE.length);
  for (let i = 0; i < prefix; i++)
    if (data[i] !== V2_SIGNATURE[i]) return invalid(`byte ${i} is 0x${hex(data[i])}, not the v2 signature's`);
  if (data.byteLength <= 12) return MORE;
  const versionCommand = data[12] as number;
  if (versionCommand >> 4 !== 2) return invalid(`v2 header with version ${versionCommand >> 4}, not 2`);
  const command = versionCommand & 0x0f;
  if (command > 1) return invalid(`v2 header with command 0x${command.toString(16)}, not LOCAL (0) or PROXY (1)`);
  if (data.byteLength <= 13) return MORE;
  const familyProtocol = data[13] as number;
  const family = familyProtocol >> 4;
  const protocol = familyProtocol & 0x0f;
  if (family > 3 || protocol > 2) return invalid(`v2 header with family/protocol byte 0x${hex(familyProtocol)}`);
  if (data.byteLength < V2_FIXED_LENGTH) return MORE;
  const length = ((data[14] as number) << 8) | (data[15] as number);
  // LOCAL: "discard the protocol block including the family, which is ignored".
  const addressLength = command === 1 ? (V2_ADDRESS_LENGTH[family] ?? 0) : 0;
  if (length < addressLength)
    return invalid(`v2 address length ${length} is less than the ${addressLength} bytes its family needs`);
  const total = V2_FIXED_LENGTH + length;
  if (data.byteLength < total) return MORE;
  // TLVs after a known address block are walked so that one claiming more than the header holds is caught.
  if (addressLength > 0) {
    for (let at = V2_FIXED_LENGTH + addressLength; at < total; ) {
      if (total - at < 3) return invalid("v2 header ends inside a TLV's type and length");
      at += 3 + (((data[at + 1] as number) << 8) | (data[at + 2] as number));
      if (at > total) return invalid("a v2 TLV is longer than the header that holds it");
    }
  }
  const rest = data.subarray(total);
  if (command === 0 || protocol !== 1 || (family !== 1 && family !== 2))
    return { kind: "header", header: { version: 2 }, rest };
  const block = data.subarray(V2_FIXED_LENGTH, V2_FIXED_LENGTH + addressLength);
  const size = family === 1 ? 4 : 16;
  const format = family === 1 ? formatIPv4 : formatIPv6;
  const ports = new DataView(block.buffer, block.byteOffset + 2 * size, 4);
  const ipFamily = family === 1 ? "IPv4" : "IPv6";
  return {
    kind: "header",
    header: {
      version: 2,
      source: {
        transport: "tcp",
        hostname: format(block.subarray(0, size)),
        port: ports.getUint16(0),
        family: ipFamily,
      },
      destination: {
        transport: "tcp",
        hostname: format(block.subarray(size, 2 * size)),
        port: ports.getUint16(2),
        family: ipFamily,
      },
    },
    rest,
  };
}

function invalid(reason: string): ParseResult {
  return { kind: "invalid", reason };
}

function hex(byte: number | undefined): string {
  return (byte ?? 0).toString(16).padStart(2, "0");
}

// --- addresses ----------------------------------------------------------------

function formatIPv4(bytes: Uint8Array): string {
  return Array.from(bytes).join(".");
}

/** RFC 5952 text, as the runtimes report a peer: lower case, the longest zero run as `::`, `::ffff:1.2.3.4` for a mapped IPv4. */
export function formatIPv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] as number) << 8) | (bytes[i + 1] as number));
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff)
    return `::ffff:${formatIPv4(bytes.subarray(12))}`;
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const text = groups.map((group) => group.toString(16));
  if (bestStart < 0) return text.join(":");
  return `${text.slice(0, bestStart).join(":")}::${text.slice(bestStart + bestLength).join(":")}`;
}

/** The 16 bytes of a valid IPv6 literal (checked with `isIPv6` first). */
function ipv6Bytes(text: string): Uint8Array {
  const bytes = new Uint8Array(16);
  let head = text;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    tail = text
      .slice(lastColon + 1)
      .split(".")
      .map(Number);
    head = text.slice(0, lastColon + 1);
    if (head.endsWith(":") && !head.endsWith("::")) head = head.slice(0, -1);
  }
  const [left = "", right] = head.split("::");
  const groupsOf = (part: string) => (part === "" ? [] : part.split(":").map((group) => Number.parseInt(group, 16)));
  const leftGroups = groupsOf(left);
  const rightGroups = right === undefined ? [] : groupsOf(right);
  const tailGroups = tail.length === 4 ? [(tail[0]! << 8) | tail[1]!, (tail[2]! << 8) | tail[3]!] : [];
  const fill = 8 - leftGroups.length - rightGroups.length - tailGroups.length;
  const groups = [
    ...leftGroups,
    ...new Array<number>(right === undefined ? 0 : fill).fill(0),
    ...rightGroups,
    ...tailGroups,
  ];
  groups.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return bytes;
}

/** Any IP literal as 16 bytes, IPv4 as its IPv4-mapped IPv6 form (so `::ffff:127.0.0.1` is `127.0.0.1`); a zone is dropped. */
function ipBytes(text: string): Uint8Array | undefined {
  if (isIPv4(text)) return ipv6Bytes(`::ffff:${text}`);
  const address = text.split("%")[0] as string;
  return isIPv6(address) ? ipv6Bytes(address) : undefined;
}

// --- trust ------------------------------------------------------------------

/** A CIDR block as 16 bytes and a prefix length over them (an IPv4 block is held in its mapped form). */
export interface Cidr {
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

/** `proxyFrom`'s default: the loopback addresses. */
export const LOOPBACK = ["127.0.0.0/8", "::1/128"] as const;

/** Parses `192.168.0.0/16`, `fd00::/8`, or a lone address (`10.0.0.7`: that one host); throws `EINVAL` naming the entry. */
export function parseCidr(text: string, option = "proxyFrom"): Cidr {
  const slash = text.indexOf("/");
  const address = slash < 0 ? text : text.slice(0, slash);
  const ipv4 = isIPv4(address);
  if (!ipv4 && !isIPv6(address))
    throw new EchoError(
      "EINVAL",
      `invalid option ${option}: ${JSON.stringify(text)} is not an IP address or CIDR block such as 10.0.0.0/8 or fd00::/8`,
    );
  const bits = ipv4 ? 32 : 128;
  const prefixText = slash < 0 ? String(bits) : text.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
  if (!(prefix <= bits))
    throw new EchoError(
      "EINVAL",
      `invalid option ${option}: ${JSON.stringify(text)} has prefix length ${JSON.stringify(prefixText)}; an ${ipv4 ? "IPv4" : "IPv6"} block takes 0 to ${bits}`,
    );
  return { bytes: ipBytes(address) as Uint8Array, prefix: ipv4 ? 96 + prefix : prefix };
}

/** Every entry of a `proxyFrom` list, checked: an empty list would refuse every connection, so it is refused itself. */
export function parseTrustList(value: unknown, option = "proxyFrom"): Cidr[] {
  if (!Array.isArray(value) || value.some((entry) => typeof entry !== "string"))
    throw new EchoError("EINVAL", `invalid option ${option}: expected an array of CIDR blocks such as ["10.0.0.0/8"]`);
  if (value.length === 0)
    throw new EchoError(
      "EINVAL",
      `invalid option ${option}: an empty list trusts no balancer, so every connection would be refused`,
    );
  return value.map((entry: string) => parseCidr(entry.trim(), option));
}

/** Whether a peer (as its socket reports it) lies in one of the blocks. */
export function isTrusted(trusted: readonly Cidr[], hostname: string): boolean {
  const peer = ipBytes(hostname);
  if (!peer) return false;
  return trusted.some(({ bytes, prefix }) => {
    const whole = prefix >> 3;
    for (let i = 0; i < whole; i++) if (peer[i] !== bytes[i]) return false;
    const bits = prefix & 7;
    if (bits === 0) return true;
    const mask = (0xff << (8 - bits)) & 0xff;
    return ((peer[whole] as number) & mask) === ((bytes[whole] as number) & mask);
  });
}

// --- the gate ----------------------------------------------------------------

/** What a gate asks of its server. */
export interface GateOwner {
  /**
   * The header is in: serve the connection as `info` (the client's addresses)
   * and return where its events go from now on.
   */
  admitProxied(gate: ProxyGate, info: ConnectionInfo<SocketAddress>): SocketEvents;
  /** The connection ended before its header did: `error` says why (`undefined`: the server closed it). */
  gateEnded(gate: ProxyGate, error: unknown): void;
}

/**
 * A connection waiting for its PROXY header: bytes are parsed, never written
 * back, and the connection is closed with `EPROTO` if the header is invalid,
 * the peer ends first, or `timeout` ms pass. Then it is handed over, and every
 * event goes to the echo session with one extra call.
 */
export class ProxyGate implements SocketEvents {
  readonly info: ConnectionInfo<SocketAddress>;
  readonly io: SocketIO;
  private readonly owner: GateOwner;
  private readonly parser = new ProxyHeaderParser();
  private target: SocketEvents | undefined;
  private ended = false;
  private readonly timer: ReturnType<typeof setTimeout>;

  constructor(info: ConnectionInfo<SocketAddress>, io: SocketIO, owner: GateOwner, timeout: number) {
    this.info = info;
    this.io = io;
    this.owner = owner;
    this.timer = setTimeout(() => this.fail(`no complete PROXY protocol header within ${timeout} ms`), timeout);
  }

  onData(chunk: Uint8Array): void {
    if (this.target) {
      this.target.onData(chunk);
      return;
    }
    if (this.ended) return;
    const result = this.parser.push(chunk);
    if (result.kind === "more") return;
    if (result.kind === "invalid") {
      this.fail(`invalid PROXY protocol header: ${result.reason}`);
      return;
    }
    clearTimeout(this.timer);
    const { source, destination } = result.header;
    const info: ConnectionInfo<SocketAddress> =
      source && destination
        ? {
            ...this.info,
            remoteAddress: source,
            localAddress: destination,
            via: { remoteAddress: this.info.remoteAddress, localAddress: this.info.localAddress },
          }
        : this.info;
    this.target = this.owner.admitProxied(this, info);
    if (result.rest.byteLength > 0) this.target.onData(result.rest);
  }

  onFlushed(bytes: number): void {
    this.target?.onFlushed(bytes);
  }

  onEnd(): void {
    if (this.target) this.target.onEnd();
    else this.fail("the connection ended before its PROXY protocol header was complete");
  }

  onError(error: unknown): void {
    if (this.target) this.target.onError(error);
    else this.end(error);
  }

  onClose(): void {
    if (this.target) this.target.onClose();
    else this.end(echoError("ECONNRESET", { operation: "read" }));
  }

  /** The server is closing: a connection that has not sent its header yet has nothing to drain. */
  abort(): void {
    this.end(undefined);
  }

  private fail(reason: string): void {
    this.end(new EchoError("EPROTO", `${reason}; the connection was closed without echoing anything`));
  }

  private end(error: unknown): void {
    if (this.ended || this.target) return;
    this.ended = true;
    clearTimeout(this.timer);
    this.io.destroy();
    this.owner.gateEnded(this, error);
  }
}
