/** Wires a chat transport, the helper clients and the relay together. */
import path from 'node:path';
import type { Config } from './config.js';
import type { Reporter } from './log.js';
import { BridgeApi, loadApiToken } from './api.js';
import type { ApiTuning } from './api.js';
import { HelperClient } from './helperClient.js';
import { NotifyState } from './notify.js';
import { AllowedFile, PAIRING_FILE, PairingCodes } from './pairingCodes.js';
import type { PairingOptions } from './pairingCodes.js';
import { Relay } from './relay.js';
import type { ChatTransport, ConnectionUpdate } from './transport.js';
import { WorkspaceRegistry } from './workspaces.js';

export interface Bridge {
  relay: Relay;
  helpers: HelperClient[];
  transport: ChatTransport;
  /** The bridge's own API (--api-port), null without it. */
  api: BridgeApi | null;
  /** Workspaces added through the API (`addWorkspace`). */
  workspaces: WorkspaceRegistry;
  /** Drains queued replies (up to drainMs), then closes both sides. */
  stop(drainMs?: number): Promise<void>;
}

/** Wires a transport, the helpers and the relay together and starts them. */
export interface BridgeTuning {
  /** Passed to every HelperClient (tests shorten the waits). */
  reconnectInitialMs?: number;
  reconnectMaxMs?: number;
  tokenPollMs?: number;
  /** Notification bursts for one chat within this window become one message (default 2000 ms). */
  coalesceMs?: number;
  /** Replies waiting for WhatsApp: per chat at most (default 50), each at most this long (default 10 min). */
  maxQueuedRepliesPerChat?: number;
  replyHoldMs?: number;
  /** A reply the helper has not given within this long stops holding back the chat's later replies (default 1000 ms). */
  orderHoldMs?: number;
  /** The longest wait for a helper's first answer before the chat hears there is none yet (default 120 s). */
  replyTimeoutMs?: number;
  /** Notifications held per chat while WhatsApp is away (default 100; the oldest dropped beyond, approvals last). */
  maxHeldPerChat?: number;
  /** Pairing code limits (tests shorten the hour). */
  pairing?: PairingOptions;
  /** Workspaces at most, configured and added through the API together (default 16). */
  maxWorkspaces?: number;
  /** How long an API `addWorkspace` waits for the helper's first verdict (default 10 s). */
  firstConnectMs?: number;
}

/** Where the notification state lives: `<stateDir>/notify.json`, stateDir defaulting to the auth folder's parent. */
export function notifyStateFile(config: Config): string {
  return path.join(config.stateDir ?? path.dirname(config.authDir), 'notify.json');
}

export async function startBridge(config: Config, transport: ChatTransport, reporter: Reporter, tuning: BridgeTuning = {}, apiTuning: ApiTuning = {}): Promise<Bridge> {
  const { coalesceMs, maxQueuedRepliesPerChat, replyHoldMs, maxHeldPerChat, orderHoldMs, replyTimeoutMs, pairing: pairingTuning, maxWorkspaces, firstConnectMs, ...helperTuning } = tuning;
  const helpers = config.workspaces.map((w) => new HelperClient({
    name: w.name,
    url: w.url,
    tokenFile: w.tokenFile,
    workspaceId: w.workspaceId,
    reporter,
    sendsPerSecond: config.helperSendsPerSecond,
    ...helperTuning,
  }));
  const notify = new NotifyState(notifyStateFile(config), 500, (e) => { reporter.log('warn', e.message); });
  for (const w of config.workspaces) notify.bindWorkspaceId(w.name, w.workspaceId);
  const stateDir = config.stateDir ?? path.dirname(config.authDir);
  // Pending codes survive a restart (pairing.json); a bad file is reported, never fatal.
  const pairing = new PairingCodes({
    file: path.join(stateDir, PAIRING_FILE),
    onError: (message) => { reporter.log('warn', message); },
    ...pairingTuning,
  });
  // Senders approved with a pairing code: kept in allowed.json unless the editor owns the list.
  const allowedFile = config.allowManaged ? null : new AllowedFile(stateDir);
  let approved: string[] = [];
  if (allowedFile) {
    try { approved = allowedFile.load(); } catch (e) { reporter.log('warn', (e as Error).message); }
  }
  const relay = new Relay({
    transport,
    workspaces: helpers,
    reporter,
    allow: [...config.allow, ...approved.filter((a) => !a.endsWith('@lid'))],
    owners: config.owners ?? [],
    pairing,
    groups: config.groups,
    perSenderPerMinute: config.perSenderPerMinute,
    notify,
    ...(coalesceMs !== undefined ? { coalesceMs } : {}),
    ...(maxQueuedRepliesPerChat !== undefined ? { maxQueuedRepliesPerChat } : {}),
    ...(replyHoldMs !== undefined ? { replyHoldMs } : {}),
    ...(orderHoldMs !== undefined ? { orderHoldMs } : {}),
    ...(replyTimeoutMs !== undefined ? { replyTimeoutMs } : {}),
    ...(maxHeldPerChat !== undefined ? { maxHeldPerChat } : {}),
  });
  for (const lid of approved.filter((a) => a.endsWith('@lid'))) relay.admit(lid, null);
  const workspaces = new WorkspaceRegistry({
    relay,
    reporter,
    notify,
    configured: config.workspaces.map((w) => w.name),
    helpers,
    helperOptions: { sendsPerSecond: config.helperSendsPerSecond, ...helperTuning },
    ...(maxWorkspaces !== undefined ? { maxWorkspaces } : {}),
    ...(firstConnectMs !== undefined ? { firstConnectMs } : {}),
  });
  pairing.on('allowed', (a) => {
    reporter.event('allowed', { number: a.number });
    if (!allowedFile) return;
    try {
      allowedFile.add([a.number, ...(a.lid && a.lid !== a.number ? [a.lid] : [])]);
    } catch (e) {
      reporter.log('error', `pairing: ${a.number} is allowed until the bridge stops, but cannot be saved: ${(e as Error).message}`);
    }
  });
  transport.on('qr', (qr) => { reporter.event('qr', { qr }); });
  transport.on('connection', (u: ConnectionUpdate) => {
    if (u.state === 'close') {
      if (u.reason === 'loggedOut') {
        reporter.log('error', u.willReconnect
          ? 'WhatsApp: this device was logged out; --relink given, showing a new QR code'
          : 'WhatsApp: this device was logged out (removed from Linked devices). Run again with --relink to link it again.');
      } else if (u.reason === 'clientTooOld') {
        reporter.log('error', `WhatsApp: client too old (${u.detail}). Update companion-whatsapp, or give the current WhatsApp Web version with --wa-version (e.g. --wa-version 2.3000.1023456789). Not reconnecting.`);
      } else if (u.reason === 'forbidden') {
        reporter.log('error', `WhatsApp refused this account (403 forbidden: ${u.detail}); the number may be banned or restricted. Not reconnecting; check the phone.`);
      } else if (u.reason === 'multideviceMismatch') {
        reporter.log('error', `WhatsApp: multi-device mismatch (411: ${u.detail}); the stored session does not fit the account any more. Not reconnecting; run again with --relink.`);
      } else if (u.reason === 'replaced') {
        reporter.log('error', 'WhatsApp: the session was replaced by another connection with the same credentials (is another companion-whatsapp running?). Not reconnecting.');
      } else {
        reporter.log(u.willReconnect ? 'warn' : 'info', `WhatsApp connection closed: ${u.detail}${u.willReconnect ? '; reconnecting' : ''}`);
      }
      reporter.event('status', { whatsapp: 'close', reason: u.reason, detail: u.detail, willReconnect: u.willReconnect });
    } else if (u.state === 'open') {
      reporter.event('status', { whatsapp: 'open', ownNumber: u.ownE164 });
    } else {
      reporter.event('status', { whatsapp: 'connecting' });
    }
  });
  const api = config.apiPort === undefined ? null : await startApi(config, transport, relay, reporter, apiTuning, pairing, approved, workspaces);
  relay.start();
  for (const h of helpers) h.start();
  await transport.start();
  let stopped: Promise<void> | null = null;
  return {
    relay,
    helpers,
    transport,
    api,
    workspaces,
    stop(drainMs = 5000): Promise<void> {
      stopped ??= (async () => {
        await api?.close();
        const drained = await relay.drain(drainMs);
        if (!drained) reporter.log('warn', `some replies were not sent within ${drainMs} ms`);
        await Promise.all([...helpers].map((h) => h.stop()));
        notify.flush();
        await transport.close();
      })();
      return stopped;
    },
  };
}


/** The API's token (BRIDGE_TOKEN, else `<stateDir>/api-token`), then the API on 127.0.0.1:apiPort. */
async function startApi(config: Config, transport: ChatTransport, relay: Relay, reporter: Reporter, tuning: ApiTuning, pairing: PairingCodes, approved: string[], workspaces: WorkspaceRegistry): Promise<BridgeApi> {
  const { token, source } = loadApiToken(config.stateDir ?? path.dirname(config.authDir), tuning.env);
  reporter.log('info', `api: token from ${source}`);
  return BridgeApi.start({
    ...tuning, port: config.apiPort!, token, transport, reporter, allows: (m) => relay.allows(m), allow: [...config.allow, ...(config.owners ?? []), ...approved.filter((a) => !a.endsWith('@lid'))], groups: config.groups, pairing, workspaces,
  });
}
