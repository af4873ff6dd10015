import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // One cell's first test waits for the whole cell (one driver process runs all its cases).
    testTimeout: 300_000,
    hookTimeout: 60_000,
    // The matrix measures RSS and stalls: it must not share the 2 cores with another test file.
    fileParallelism: false,
  },
});
