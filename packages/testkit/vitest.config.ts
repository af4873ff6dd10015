import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Each case starts runtimes (Deno compiles TypeScript on a cold cache).
    testTimeout: 120_000,
    // The signal tests time a drain: they must not share the 2 cores with another test file.
    fileParallelism: false,
  },
});
