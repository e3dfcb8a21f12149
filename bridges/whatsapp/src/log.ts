/**
 * Logging and machine-readable events. Logs always go to stderr (one line
 * each); with --json, stdout carries one JSON event per line.
 */

export type Level = 'error' | 'warn' | 'info' | 'debug';
const ORDER: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export type EventType = 'qr' | 'status' | 'message' | 'sent' | 'error' | 'allowed';

export interface Reporter {
  log(level: Level, message: string): void;
  event(type: EventType, data: Record<string, unknown>): void;
}

export interface ConsoleReporterOptions {
  json: boolean;
  level?: Level;
  stdout?: (line: string) => void;
  stderr?: (line: string) => void;
}

export class ConsoleReporter implements Reporter {
  private readonly json: boolean;
  private readonly level: Level;
  private readonly out: (line: string) => void;
  private readonly err: (line: string) => void;

  constructor(opts: ConsoleReporterOptions) {
    this.json = opts.json;
    this.level = opts.level ?? 'info';
    this.out = opts.stdout ?? ((l) => { process.stdout.write(`${l}\n`); });
    this.err = opts.stderr ?? ((l) => { process.stderr.write(`${l}\n`); });
  }

  log(level: Level, message: string): void {
    if (ORDER[level] > ORDER[this.level]) return;
    this.err(`${new Date().toISOString()} ${level}: ${message}`);
  }

  event(type: EventType, data: Record<string, unknown>): void {
    if (!this.json) return;
    this.out(JSON.stringify({ type, ...data, timestamp: Date.now() }));
  }
}

/** Collects everything; for tests. */
export class MemoryReporter implements Reporter {
  readonly logs: { level: Level; message: string }[] = [];
  readonly events: { type: EventType; data: Record<string, unknown> }[] = [];

  log(level: Level, message: string): void {
    this.logs.push({ level, message });
  }

  event(type: EventType, data: Record<string, unknown>): void {
    this.events.push({ type, data });
  }
}
