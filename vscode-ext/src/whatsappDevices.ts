/*
 * The helper devices minted for the WhatsApp bridge (device "WhatsApp"), and
 * their revocation when WhatsApp is unlinked. Every Link, every restart of
 * the bridge for a new setting and every daily refresh mints a new device,
 * so the ids are remembered (per workspace: the registry is the workspace
 * helper's) and Unlink revokes every one of them with devices/revoke: their
 * tokens are refused from then on (4001), not only deleted from the
 * bridge's folder. An id that cannot be revoked now (the server is not
 * running, the call failed) is kept and revoked when the helper runs again.
 * No vscode import: the tests run it in plain Node against the real helper
 * and the bundled bridge.
 *
 * Ownership: none; the ids live in the caller's IdStore (workspaceState).
 */
import type { Logger } from './client';

/** A list of device ids kept by the caller (the extension's workspaceState). */
export interface IdStore {
  get(): string[];
  set(ids: string[]): PromiseLike<void>;
}

/** What revocation needs of a HelperClient. */
export interface Revoker {
  revokeDevice(id: string): Promise<{ revoked: boolean }>;
}

/** What unlinking needs of the bridge's supervisor. */
export interface Unlinker {
  unlink(): Promise<boolean>;
}

/** Ids remembered at most (a bound for a long-lived workspace; the oldest go first). */
export const MAX_REMEMBERED = 64;

/** The ids with `id` added at the end (once), at most MAX_REMEMBERED. Pure. */
export function withDevice(ids: readonly unknown[] | undefined, id: string): string[] {
  const list = (Array.isArray(ids) ? ids : []).filter((x): x is string => typeof x === 'string' && x !== id);
  list.push(id);
  return list.slice(-MAX_REMEMBERED);
}

/** The error's JSON-RPC code and data.code, when it has them. */
function rpcCodes(e: unknown): { code?: number; dataCode?: string } {
  if (typeof e !== 'object' || e === null) return {};
  const o = e as { code?: unknown; data?: unknown };
  const data = typeof o.data === 'object' && o.data !== null ? (o.data as { code?: unknown }) : {};
  return {
    ...(typeof o.code === 'number' ? { code: o.code } : {}),
    ...(typeof data.code === 'string' ? { dataCode: data.code } : {}),
  };
}

/**
 * Revokes each device: answers those revoked, and those left to try again
 * (no helper, a failure). A device the helper does not know (another
 * workspace's, or its registry was reset) and a helper without devices/revoke
 * (nothing to revoke) are not tried again.
 */
export async function revokeDevices(
  helper: Revoker | undefined,
  ids: readonly string[],
  log: Logger,
): Promise<{ revoked: string[]; left: string[] }> {
  const revoked: string[] = [];
  const left: string[] = [];
  for (const id of ids) {
    if (!helper) {
      left.push(id);
      continue;
    }
    try {
      await helper.revokeDevice(id);
      revoked.push(id);
      log.info(`whatsapp: the device "WhatsApp" (${id}) is revoked: its token is refused from now on`);
    } catch (e) {
      const { code, dataCode } = rpcCodes(e);
      if (dataCode === 'UNKNOWN_DEVICE') {
        log.info(`whatsapp: the device ${id} is not in this workspace's registry (nothing to revoke)`);
      } else if (code === -32601) {
        log.info('whatsapp: this helper keeps no device registry (devices/revoke): the token expires by itself');
      } else {
        left.push(id);
        log.warn(`whatsapp: could not revoke the device ${id} (${e instanceof Error ? e.message : String(e)}); trying again when the server runs`);
      }
    }
  }
  return { revoked, left };
}

/**
 * Unlink WhatsApp: the bridge logs the device out and its session is
 * deleted (supervisor.unlink), then every helper device minted for it is
 * revoked; those that could not be are moved to `pending` for later.
 */
export async function unlinkAndRevoke(o: {
  supervisor: Unlinker;
  helper: Revoker | undefined;
  /** Devices of the current link. */
  current: IdStore;
  /** Devices still to revoke (from an earlier Unlink without a running server). */
  pending: IdStore;
  log: Logger;
}): Promise<{ confirmed: boolean; revoked: string[]; left: string[] }> {
  const confirmed = await o.supervisor.unlink();
  return { confirmed, ...(await revokeLink(o)) };
}

/**
 * The link is over (this window unlinked, or the window that ran the bridge
 * did): every device of the current link, and those left from before, are
 * revoked; those that could not be stay in `pending` for later.
 */
export async function revokeLink(o: {
  helper: Revoker | undefined;
  current: IdStore;
  pending: IdStore;
  log: Logger;
}): Promise<{ revoked: string[]; left: string[] }> {
  const ids = [...new Set([...o.pending.get(), ...o.current.get()])];
  // Moved to pending first: a window closing now still revokes them later.
  await o.pending.set(ids);
  await o.current.set([]);
  const r = await revokeDevices(o.helper, ids, o.log);
  await o.pending.set(r.left);
  return r;
}

/** The helper runs (again): revokes what an earlier Unlink could not. */
export async function revokePending(helper: Revoker | undefined, pending: IdStore, log: Logger): Promise<string[]> {
  const ids = pending.get();
  if (ids.length === 0 || !helper) return [];
  const r = await revokeDevices(helper, ids, log);
  await pending.set(r.left);
  return r.revoked;
}
