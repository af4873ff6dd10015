export * from "./runtimes.ts";
export * from "./supported.ts";
export * from "./versions.ts";
