/** Failing a case, and never hanging one. Runtime-neutral: the driver uses it on Node, Bun and Deno. */

/** A case's verdict, as opposed to an unexpected error in the harness itself. */
export class CaseFailure extends Error {}

export function fail(message: string): never {
  throw new CaseFailure(message);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects with a `CaseFailure` naming `what` if `promise` takes longer than `ms`: a case never hangs. */
export async function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CaseFailure(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
