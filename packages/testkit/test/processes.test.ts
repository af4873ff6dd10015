import { afterAll, describe, expect, test } from "vitest";
import { groupMembers, killAll, runManaged, spawnManaged, spawnWithLines } from "../src/index.ts";

afterAll(killAll);

/** Polls `predicate` every 20 ms for at most `ms`; resolves with its last value. */
async function until(predicate: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((resolve) => setTimeout(resolve, 20))) {
    if (predicate()) return true;
  }
  return predicate();
}

describe("spawnManaged", () => {
  test("a child forked into the group dies once the leader has exited", async () => {
    // The leader exits at once; `sleep` stays behind in its process group.
    const managed = spawnManaged("sh", ["-c", "sleep 30 & exit 0"], { timeoutMs: 10_000 });
    const exit = await managed.exited;
    expect(exit).toEqual({ code: 0, signal: null, timedOut: false });
    expect(await until(() => groupMembers(managed.pid).length === 0, 2000)).toBe(true);
  });

  test("past its hard timeout the whole group is killed with SIGKILL", async () => {
    const managed = spawnManaged("sh", ["-c", "sleep 30 & sleep 30"], { timeoutMs: 300 });
    expect(await managed.exited).toEqual({ code: null, signal: "SIGKILL", timedOut: true });
    expect(await until(() => groupMembers(managed.pid).length === 0, 2000)).toBe(true);
  });

  test("the exit handler is installed once, however often the set of processes empties", async () => {
    await spawnManaged("true", [], { timeoutMs: 5000 }).exited;
    const listeners = process.listenerCount("exit");
    for (let i = 0; i < 3; i++) await spawnManaged("true", [], { timeoutMs: 5000 }).exited;
    expect(process.listenerCount("exit")).toBe(listeners);
  });

  test("a command that does not exist exits 127, never throws", async () => {
    const managed = spawnManaged("/nonexistent/tcp-echo-no-such-binary", [], { timeoutMs: 5000 });
    expect((await managed.exited).code).toBe(127);
  });
});

describe("runManaged", () => {
  test("returns the exit code, every stdout byte and stderr", async () => {
    const result = await runManaged("sh", ["-c", "head -c 1048576 /dev/zero; echo oops >&2; exit 3"], {
      timeoutMs: 10_000,
    });
    expect(result.code).toBe(3);
    expect(result.stdout.byteLength).toBe(1048576);
    expect(result.stderr).toBe("oops");
  });

  test("writes `input` to stdin and closes it", async () => {
    const result = await runManaged("cat", [], { timeoutMs: 10_000, input: "echoed\n" });
    expect(result.stdout.toString()).toBe("echoed\n");
  });
});

describe("spawnWithLines", () => {
  test("line() resolves with the first matching line, also one printed just before the exit", async () => {
    const managed = spawnWithLines("sh", ["-c", "echo one; echo two"], { timeoutMs: 10_000 });
    expect(await managed.line((line) => line.startsWith("t"), 5000)).toBe("two");
    await managed.ended;
    expect(managed.lines).toEqual(["one", "two"]);
  });

  test("line() rejects when the process exits without the line", async () => {
    const managed = spawnWithLines("sh", ["-c", "echo one"], { timeoutMs: 10_000 });
    await expect(managed.line((line) => line === "never", 5000)).rejects.toThrow(/exited before the expected line/);
  });
});
