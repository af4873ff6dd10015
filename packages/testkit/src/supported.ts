/**
 * The runtime versions the README says are supported: `pnpm matrix --runtimes
 * supported` runs them, the README's embed example is tested on each, and the
 * README's "Supported versions" table is a run of exactly these.
 */
export const SUPPORTED = [
  "node@22.23.5",
  "node@24.21.0",
  "node@26.12.1",
  "bun@1.3.14",
  "bun@1.4.5",
  "deno@2.5.7",
  "deno@2.9.6",
] as const;
