/**
 * One of our UDP servers as a bench peer: `udp.ts PACKAGE_ENTRY` (any runtime).
 * The limits are lifted: the bench is one source at full speed, which the
 * default per-source bucket (1,000 datagrams a second) exists to stop.
 */
import type { EchoRuntime } from "@tcp-echo/core";
import { announce } from "./common.ts";

const ours: EchoRuntime = await import(process.argv[2] as string);
const server = await ours.listen({ transport: "udp", port: 0, sourceRateLimit: false, rateLimit: false });
announce(server.address.port);
