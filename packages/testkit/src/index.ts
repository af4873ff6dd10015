export * from "./pack.ts";
export * from "./proc.ts";
export * from "./processes.ts";
export * from "./runtimes.ts";
export * from "./stalling.ts";
export * from "./supported.ts";
export * from "./udp.ts";
export * from "./versions.ts";
