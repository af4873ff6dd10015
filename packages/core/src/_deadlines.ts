/**
 * Timeouts of one length, armed in the order they fall due, on one timer. A
 * client arms two per connection (the connect's timeout, then `replyTimeout`
 * while it waits on the server) and mostly clears them a few milliseconds
 * later: a timer each was 5-6% of the Deno client's profile samples under
 * connection churn, where `setTimeout` in our modules builds a Node `Timeout`
 * over a web timer (ext/node/polyfills/internal/timers.mjs); 1% with these. Like Node's own timer
 * lists (lib/internal/timers.js): items of one duration are due in the order
 * they were added, so the head is always the next due, and the one timer is
 * armed for it. A cancelled item is dropped when it reaches the head; with
 * nothing left live the timer is cleared, so an idle process can exit.
 */

export interface Deadline {
  /** Never fires after this. */
  cancel(): void;
}

class Entry<T> implements Deadline {
  item: T | undefined;
  readonly at: number;
  private readonly owner: Deadlines<T>;

  constructor(owner: Deadlines<T>, item: T, at: number) {
    this.owner = owner;
    this.item = item;
    this.at = at;
  }

  cancel(): void {
    if (this.item === undefined) return;
    this.item = undefined;
    this.owner.cancelled();
  }
}

export class Deadlines<T> {
  private readonly ms: number;
  private readonly fire: (item: T) => void;
  private entries: Entry<T>[] = [];
  private head = 0;
  private live = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** When the timer is due. */
  private armedAt = 0;
  /** In `expire`, which arms the timer itself once it is done. */
  private expiring = false;

  constructor(ms: number, fire: (item: T) => void) {
    this.ms = ms;
    this.fire = fire;
  }

  /** Calls `fire(item)` in `ms` milliseconds unless cancelled first. */
  add(item: T): Deadline {
    const at = performance.now() + this.ms;
    const entry = new Entry(this, item, at);
    this.skipCancelled();
    this.entries.push(entry);
    this.live++;
    if (this.timer === undefined && !this.expiring) this.arm(at);
    return entry;
  }

  /** How many are armed and not cancelled (for tests). */
  get size(): number {
    return this.live;
  }

  cancelled(): void {
    if (--this.live > 0) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.entries = [];
    this.head = 0;
  }

  private arm(at: number): void {
    this.armedAt = at;
    this.timer = setTimeout(this.due, Math.max(0, at - performance.now()));
  }

  /** Made once per `Deadlines` (there is one per timeout length), not per timer. */
  private readonly due = (): void => this.expire();

  private expire(): void {
    this.timer = undefined;
    this.expiring = true;
    // A timer may fire a little before its time (Node counts whole milliseconds).
    const now = Math.max(performance.now(), this.armedAt);
    try {
      // `fire` may add or cancel entries (and so replace `entries`): read them afresh each time.
      while (this.head < this.entries.length) {
        const entry = this.entries[this.head] as Entry<T>;
        const { item } = entry;
        if (item !== undefined && entry.at > now) break;
        this.head++;
        if (item === undefined) continue;
        entry.item = undefined;
        this.live--;
        this.fire(item);
      }
    } finally {
      this.expiring = false;
      this.compact();
      const next = this.entries[this.head];
      if (next !== undefined) this.arm(next.at);
    }
  }

  private skipCancelled(): void {
    const { entries } = this;
    while (this.head < entries.length && (entries[this.head] as Entry<T>).item === undefined) this.head++;
    this.compact();
  }

  private compact(): void {
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
