/**
 * For the npm build only (`tsconfig.build.json`, types "deno"): the one
 * `node:buffer` export the adapter uses. Deno itself provides the module at
 * run time, and `deno check` types it from Deno's own Node types.
 */
declare module "node:buffer" {
  export const Buffer: { compare(a: Uint8Array, b: Uint8Array): number };
}
