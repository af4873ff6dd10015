import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The fault, storm and soak files spawn servers and measure them from /proc:
    // one file at a time keeps those numbers about one server on a 2-core machine.
    fileParallelism: false,
  },
});
