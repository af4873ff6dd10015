/** Our Node package as a bench peer: `serve` or `client` (see common.ts). */
import * as ours from "@tcp-echo/node";
import { main } from "./common.ts";

await main(ours, process.argv.slice(2));
