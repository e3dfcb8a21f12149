/** companion-whatsapp: entry point. */
import { parseArgs, USAGE } from './config.js';
import type { Config } from './config.js';
import { parseStandIn, STANDIN_CHAT_ENV, STANDIN_ENV, StandInLinkingTransport } from './standinTransport.js';
import type { ChatTransport } from './transport.js';
import { ConsoleReporter } from './log.js';
import { startBridge } from './bridge.js';
import { VERSION } from './version.js';

/**
 * WhatsApp through Baileys; or, when COMPANION_WHATSAPP_STANDIN is set (tests
 * of programs that run this bundle), the in-memory stand-in that plays linking.
 */
async function makeTransport(config: Config, reporter: ConsoleReporter): Promise<ChatTransport> {
  const standIn = process.env[STANDIN_ENV];
  if (standIn !== undefined && standIn.length > 0) {
    const linkAfterMs = parseStandIn(standIn);
    if (linkAfterMs === undefined) throw new Error(`${STANDIN_ENV}: expected a number of milliseconds or "never", got ${standIn.slice(0, 40)}`);
    const chatDir = process.env[STANDIN_CHAT_ENV];
    return new StandInLinkingTransport({ authDir: config.authDir, reporter, relink: config.relink, linkAfterMs, chatDir: chatDir ? chatDir : undefined });
  }
  const { BaileysTransport, parseWebVersion } = await import('./baileys.js');
  return new BaileysTransport({
    authDir: config.authDir, reporter, relink: config.relink,
    waVersion: config.waVersion ? parseWebVersion(config.waVersion) ?? undefined : undefined,
  });
}

export async function main(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv);
  if (parsed.kind === 'help') { process.stdout.write(USAGE); return 0; }
  if (parsed.kind === 'version') { process.stdout.write(`companion-whatsapp ${VERSION}\n`); return 0; }
  if (parsed.kind === 'error') {
    process.stderr.write(`companion-whatsapp: ${parsed.message}\n\n${USAGE}`);
    return 2;
  }
  const config = parsed.config;
  const reporter = new ConsoleReporter({ json: config.json, level: config.logLevel });
  reporter.log('info', `companion-whatsapp ${VERSION}; session in ${config.authDir}`);
  // Signals are handled from the start, so a stop during startup is graceful too.
  let stopRequested: NodeJS.Signals | null = null;
  let onStop: (() => void) | null = null;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopRequested) return;
    stopRequested = sig;
    reporter.log('info', `${sig}: sending queued replies, then stopping`);
    onStop?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  if (config.stopWithParent) {
    // The parent holds the other end of stdin: when it dies, the pipe closes.
    const parentGone = (): void => {
      if (stopRequested) return;
      stopRequested = 'SIGTERM';
      reporter.log('info', 'stdin closed (--stop-with-parent): sending queued replies, then stopping');
      onStop?.();
    };
    process.stdin.on('end', parentGone);
    process.stdin.on('close', parentGone);
    process.stdin.on('error', parentGone);
    process.stdin.resume();
  }
  const transport = await makeTransport(config, reporter);
  const bridge = await startBridge(config, transport, reporter);
  await new Promise<void>((resolve) => {
    onStop = resolve;
    if (stopRequested) resolve();
  });
  await bridge.stop(5000);
  return 0;
}

main(process.argv.slice(2)).then((code) => { process.exit(code); }, (e: unknown) => {
  // The API's start-up problems (token file, port) are the user's to fix: their message, no stack.
  const apiProblem = e instanceof Error && e.name === 'ApiStartError';
  process.stderr.write(`companion-whatsapp: ${apiProblem ? e.message : (e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
