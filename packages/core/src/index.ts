/**
 * @tcp-echo/core: the runtime-neutral contract and protocol of tcp-echo.
 *
 * Three entry points, one per audience:
 * - `@tcp-echo/core` (this file): the user contract, what every runtime
 *   package (`@tcp-echo/node`, `@tcp-echo/bun`, `@tcp-echo/deno`) re-exports
 *   whole: the types of `types.ts`, `EchoError` and its codes.
 * - `@tcp-echo/core/adapter` (`adapter.ts`): what a runtime adapter is written
 *   against: `defineRuntime` and the `SocketIO`/`SocketEvents` table.
 * - `@tcp-echo/core/tools` (`tools.ts`): what the CLI, benchmarks and test
 *   tools share: `runCli`, argument parsing, statistics.
 *
 * Files named `_*.ts` are internal: no entry point exports them whole, and a
 * name they hold is public only where one of these three files re-exports it.
 */

export type { EchoErrorCode, ErrorContext } from "./_errors.ts";
export { EchoError, ERROR_CODES, isEchoError } from "./_errors.ts";
export type * from "./types.ts";
