/**
 * The runtime versions the README says are supported: `pnpm matrix --runtimes
 * supported` runs them, the README's embed example is tested on each, and the
 * README's "Supported versions" table comes from a run of them (with Bun 1.3
 * and Deno 2.5, tested and found wanting).
 */
export const SUPPORTED = ["node@22.23.5", "node@24.21.0", "node@26.12.1", "bun@1.4.5", "deno@2.9.6"] as const;
