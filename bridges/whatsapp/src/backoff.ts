/** Exponential backoff with jitter: initial, doubling, capped, each delay +-jitter. */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly initialMs = 1000,
    private readonly maxMs = 30000,
    private readonly jitter = 0.2,
    private readonly random: () => number = Math.random,
  ) {}

  /** The next delay in milliseconds. */
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    const spread = base * this.jitter;
    return Math.max(0, Math.round(base - spread + this.random() * 2 * spread));
  }

  reset(): void {
    this.attempt = 0;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => { setTimeout(r, ms); });
