/** Our Bun package as a bench peer: `serve` or `client` (see common.ts). */
import * as ours from "@tcp-echo/bun";
import { main } from "./common.ts";

await main(ours, process.argv.slice(2));
