/**
 * @tcp-echo/core/tools: what the command line, the benchmarks and the test
 * tools share, kept out of the user contract. Each runtime's `cli.ts` hands
 * `runCli` its `CliHost`.
 */

export type { CliHost } from "./_cli.ts";
export { EXIT, parseArguments, processSignals, runCli } from "./_cli.ts";
export { errorCodeOf, formatAddress, formatEndpoint } from "./_errors.ts";
export { concat } from "./_protocol.ts";
export type { Summary } from "./_stats.ts";
export { median, percentile, summarize } from "./_stats.ts";
export type { CliWorker } from "./_workers.ts";
export { childWorkers, startedAsWorker, supervisedSignals } from "./_workers.ts";
