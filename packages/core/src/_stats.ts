/** Summary statistics, shared by `ping`, the conformance runner and the benchmarks. */

export interface Summary {
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  /** Mean deviation as `ping` reports it: sqrt(mean(x^2) - mean(x)^2). */
  readonly mdev: number;
  readonly p50: number;
  readonly p99: number;
}

/** Nearest-rank percentile of already sorted values; `NaN` when empty. */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(fraction * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))] as number;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const count = sorted.length;
  if (count === 0)
    return {
      count,
      min: Number.NaN,
      max: Number.NaN,
      mean: Number.NaN,
      mdev: Number.NaN,
      p50: Number.NaN,
      p99: Number.NaN,
    };
  let sum = 0;
  let squares = 0;
  for (const value of sorted) {
    sum += value;
    squares += value * value;
  }
  const mean = sum / count;
  return {
    count,
    min: sorted[0] as number,
    max: sorted[count - 1] as number,
    mean,
    mdev: Math.sqrt(Math.max(0, squares / count - mean * mean)),
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
  };
}
