/*
 * The paired devices (docs/protocol.md, "Devices"), as the helper lists
 * them: devices/list fills the model after each (re)start of the helper,
 * on every companion/devicesChanged (a device added, paired, revoked or
 * renamed) and when a client connects or leaves (its connected state); a
 * helper that exits empties it. Revoke and Rename send
 * devices/revoke and devices/rename. Also the words the view and the status
 * bar use (state, description, tooltip lines, who is connected) and the
 * device-name rule of auth/issueToken. No vscode import: the Devices view
 * (devicesView.ts) is built on it, and the tests run it in plain Node
 * against the real helper.
 */
import { Emitter, type Logger } from './client';
import type { Device, DevicesListResult } from './protocol';

/** An Emitter of any payload, listened to without it. */
export interface Signal {
  on(listener: () => void): { dispose(): void };
}

/** What the model needs of a HelperClient (a stand-in in the pure tests). */
export interface DeviceSource {
  readonly onDevicesChanged: Emitter<void>;
  /** A session opened or closed: the device's connected state changed (devicesChanged is only for the registry). */
  readonly onClientConnected: Signal;
  readonly onClientDisconnected: Signal;
  readonly onReady: Emitter<void>;
  readonly onHelperExited: Emitter<void>;
  listDevices(): Promise<DevicesListResult | undefined>;
  revokeDevice(id: string): Promise<{ revoked: boolean }>;
  renameDevice(id: string, name: string): Promise<{ renamed: boolean }>;
}

export type DeviceState = 'connected' | 'idle' | 'pending' | 'revoked' | 'expired' | 'unnamed';

export const DEVICE_NAME_MAX = 64;

/**
 * Why a device name is refused, or undefined when it is fine: 1 to 64
 * characters after trimming, none of them a control character (below
 * U+0020, or DEL), as the helper checks auth/issueToken's `deviceName` and
 * devices/rename's `name` (devices_name_ok).
 */
export function deviceNameProblem(raw: string): string | undefined {
  const name = raw.trim();
  const n = [...name].length;
  if (n === 0) return 'Type a name for the device (1 to 64 characters)';
  if (n > DEVICE_NAME_MAX) return `At most ${DEVICE_NAME_MAX} characters (this is ${n})`;
  const control = (c: string): boolean => {
    const cp = c.codePointAt(0) ?? 0;
    return cp < 0x20 || cp === 0x7f;
  };
  if ([...name].some(control)) return 'Printable characters only (no tabs, line breaks or control characters)';
  return undefined;
}

/**
 * The state the view shows: revoked and expired first, then connected;
 * pending is a phone whose pairing link has not been used yet; unnamed a
 * token from before devices; else idle.
 */
export function deviceState(d: Device, now = Date.now()): DeviceState {
  if (d.revoked) return 'revoked';
  if (d.expires > 0 && d.expires <= now) return 'expired';
  if (d.connected) return 'connected';
  if (d.state === 'pending') return 'pending';
  if (d.unnamed) return 'unnamed';
  return 'idle';
}

/** "in 5 min", "in 3 h", "in 6 d"; "5 min ago" for a past time. */
export function relTime(t: number, now = Date.now()): string {
  const d = t - now;
  const s = Math.round(Math.abs(d) / 1000);
  let text: string;
  if (s < 60) text = `${s} s`;
  else if (s < 3600) text = `${Math.round(s / 60)} min`;
  else if (s < 86400 * 2) text = `${Math.round(s / 3600)} h`;
  else text = `${Math.round(s / 86400)} d`;
  return d >= 0 ? `in ${text}` : `${text} ago`;
}

/** The label: its name, or "unnamed (userId)" for a token from before devices. */
export function deviceLabel(d: Device): string {
  if (d.unnamed || !d.name) return `unnamed (${d.userId})`;
  return d.name;
}

/** The description after the label: "connected · read, run · expires in 6 d · seen 2 min ago". */
export function deviceDescription(d: Device, now = Date.now()): string {
  const state = deviceState(d, now);
  const parts: string[] = [state === 'pending' ? 'link not used yet' : d.sessions && d.sessions > 1 && state === 'connected' ? `connected (${d.sessions})` : state];
  parts.push(d.scopes.length ? d.scopes.join(', ') : 'no scopes');
  if (state === 'expired') parts.push(`expired ${relTime(d.expires, now)}`);
  else if (d.expires > 0 && state !== 'revoked') parts.push(`expires ${relTime(d.expires, now)}`);
  if (state !== 'connected') parts.push(d.lastSeen ? `seen ${relTime(d.lastSeen, now)}` : 'never seen');
  return parts.join(' · ');
}

function when(t: number | null | undefined, now: number): string {
  if (!t) return 'never';
  return `${new Date(t).toISOString().replace('T', ' ').slice(0, 16)} UTC (${relTime(t, now)})`;
}

/** The tooltip, one fact per line. */
export function deviceTooltipLines(d: Device, now = Date.now()): string[] {
  const state = deviceState(d, now);
  const lines = [
    `${deviceLabel(d)}: ${state}`,
    `Scopes: ${d.scopes.length ? d.scopes.join(', ') : 'none'}`,
    `User id: ${d.userId}`,
    `Paired: ${when(d.created, now)}${d.paired ? ' (from a pairing link)' : ''}`,
    `${d.expires > 0 && d.expires <= now ? 'Expired' : 'Expires'}: ${d.expires > 0 ? when(d.expires, now) : 'never'}`,
    `Last seen: ${d.connected && !d.revoked ? 'now (connected)' : when(d.lastSeen, now)}`,
    `Device id: ${d.id}`,
  ];
  if (state === 'pending') lines.push('Waiting for the phone to open its pairing link (single use, 10 minutes).');
  if (state === 'revoked') lines.push('Revoked: its tokens are refused until they expire.');
  if (d.unnamed) lines.push('A token minted before devices had names; it works until it expires.');
  return lines;
}

/**
 * The tree item's contextValue: `device:<state>` plus `:revoke` and
 * `:rename` when those actions apply. package.json's menus match
 * `viewItem =~ /:revoke(:|$)/` and `/:rename(:|$)/`.
 */
export function deviceContextValue(d: Device, now = Date.now()): string {
  const state = deviceState(d, now);
  const parts = ['device', state];
  if (!d.revoked) parts.push('revoke');
  if (!d.revoked && !d.unnamed) parts.push('rename');
  return parts.join(':');
}

/** Who is connected, for the status bar: "Pixel 8, WhatsApp" ("Pixel 8 (2)" for two sessions). */
export function connectedSummary(names: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
  return [...counts].map(([n, c]) => (c > 1 ? `${n} (${c})` : n)).join(', ');
}

/** Order: connected first, then idle/unnamed, expired, revoked; by name within. */
export function sortDevices(list: readonly Device[], now = Date.now()): Device[] {
  const rank: Record<DeviceState, number> = { connected: 0, pending: 1, idle: 2, unnamed: 3, expired: 4, revoked: 5 };
  return [...list].sort(
    (a, b) =>
      rank[deviceState(a, now)] - rank[deviceState(b, now)] ||
      deviceLabel(a).localeCompare(deviceLabel(b)) ||
      a.id.localeCompare(b.id),
  );
}

/** What a devices/list answer must look like; anything else is refused (a helper from another version). */
export function parseDevicesList(v: unknown): DevicesListResult {
  if (typeof v !== 'object' || v === null || !Array.isArray((v as { devices?: unknown }).devices)) {
    throw new Error('devices/list answered without a devices array');
  }
  const r = v as { devices: unknown[]; problem?: unknown };
  const devices: Device[] = [];
  for (const e of r.devices) {
    if (typeof e !== 'object' || e === null) throw new Error('devices/list: an entry is not an object');
    const d = e as Record<string, unknown>;
    if (typeof d.id !== 'string' || d.id === '') throw new Error('devices/list: an entry without an id');
    const num = (k: string): number => {
      const x = d[k];
      return typeof x === 'number' && Number.isFinite(x) ? x : 0;
    };
    devices.push({
      id: d.id,
      name: typeof d.name === 'string' ? d.name : '',
      userId: typeof d.userId === 'string' ? d.userId : '',
      scopes: Array.isArray(d.scopes) ? d.scopes.filter((s): s is string => typeof s === 'string') : [],
      created: num('created'),
      expires: num('expires'),
      lastSeen: num('lastSeen') || null,
      revoked: d.revoked === true,
      connected: d.connected === true,
      paired: d.paired === true,
      unnamed: d.unnamed === true,
      ...(typeof d.state === 'string' ? { state: d.state } : {}),
      ...(typeof d.sessions === 'number' ? { sessions: d.sessions } : {}),
    });
  }
  return { devices, ...(typeof r.problem === 'string' && r.problem ? { problem: r.problem } : {}) };
}

export class DeviceModel {
  private list: Device[] = [];
  private registryProblem: string | undefined;
  private running = false;
  /** Bumped by every refresh and clear: an older answer arriving late is dropped. */
  private generation = 0;
  private readonly subs: { dispose(): void }[];

  /** Fires after every change of the list, the problem or the running state. */
  readonly onDidChange = new Emitter<void>();

  constructor(
    private readonly source: DeviceSource,
    private readonly log: Logger,
  ) {
    this.subs = [
      source.onDevicesChanged.on(() => void this.refresh()),
      source.onClientConnected.on(() => void this.refresh()),
      source.onClientDisconnected.on(() => void this.refresh()),
      source.onReady.on(() => void this.refresh()),
      source.onHelperExited.on(() => this.clear()),
    ];
  }

  /** The devices, connected first. */
  get devices(): Device[] {
    return sortDevices(this.list);
  }

  /** The registry's problem (corrupt or unwritable file), as the helper words it. */
  get problem(): string | undefined {
    return this.registryProblem;
  }

  /** False until a devices/list answered, and after the helper exits. */
  get helperRunning(): boolean {
    return this.running;
  }

  get(id: string): Device | undefined {
    return this.list.find((d) => d.id === id);
  }

  /** Reads devices/list (never starts the helper). */
  async refresh(): Promise<void> {
    const gen = ++this.generation;
    let r: DevicesListResult | undefined;
    try {
      const raw = await this.source.listDevices();
      r = raw === undefined ? undefined : parseDevicesList(raw);
    } catch (e) {
      if (gen !== this.generation) return;
      this.log.warn(`devices/list failed: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    if (gen !== this.generation) return;
    if (!r) {
      this.clear();
      return;
    }
    const before = this.registryProblem;
    this.list = r.devices;
    this.registryProblem = r.problem;
    this.running = true;
    if (r.problem && r.problem !== before) this.log.warn(`device registry: ${r.problem}`);
    this.onDidChange.fire();
  }

  /** Revokes one; the helper closes its sessions (4001). Throws the helper's message (unknown id...). */
  async revoke(id: string): Promise<void> {
    const d = this.get(id);
    await this.source.revokeDevice(id);
    this.log.info(`device ${d ? `"${deviceLabel(d)}" ` : ''}(${id}) revoked from VS Code`);
    await this.refresh();
  }

  /** Renames one; the name must pass deviceNameProblem (the helper checks it again). */
  async rename(id: string, name: string): Promise<void> {
    const problem = deviceNameProblem(name);
    if (problem) throw new Error(problem);
    const d = this.get(id);
    await this.source.renameDevice(id, name.trim());
    this.log.info(`device ${d ? `"${deviceLabel(d)}" ` : ''}(${id}) renamed to "${name.trim()}"`);
    await this.refresh();
  }

  private clear(): void {
    this.generation++;
    const had = this.running || this.list.length > 0 || this.registryProblem !== undefined;
    this.list = [];
    this.registryProblem = undefined;
    this.running = false;
    if (had) this.onDidChange.fire();
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    this.list = [];
    this.onDidChange.clear();
  }
}
