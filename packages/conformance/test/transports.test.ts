/**
 * `pnpm matrix --transport` inside `pnpm test`, kept small: over tcp6, unix and
 * tls, each runtime's client against its own server plus one cross-runtime cell
 * per transport, and the harness column on our servers, with a few cases each.
 * The full dimension is `pnpm matrix --transport all`.
 */

import { startMatrix } from "../src/matrix.ts";
import { PROFILES } from "../src/plan.ts";
import type { Transport } from "../src/transports.ts";
import { cellTests } from "./_cells.ts";

/** One pair of different runtimes per transport, so each transport is proven across runtimes too. */
const CROSS: Partial<Record<Transport, readonly [server: string, client: string]>> = {
  tcp6: ["deno", "bun"],
  unix: ["bun", "node"],
  tls: ["node", "deno"],
};

cellTests(
  startMatrix({
    profile: PROFILES.quick,
    jobs: 2,
    servers: ["node", "bun", "deno"],
    clients: ["node", "bun", "deno", "harness"],
    transports: ["tcp6", "unix", "tls"],
    // Driver cases the transport can break (framing, half-close), and the server's
    // own limits, which must not depend on how the connection arrived.
    cases: ["tutorial", "half-close", "pipelining", "max-connections", "drain"],
    only: (server, client, transport) =>
      client === "harness" ||
      server === client ||
      (CROSS[transport]?.[0] === server && CROSS[transport]?.[1] === client),
  }),
  "transports: ",
);
