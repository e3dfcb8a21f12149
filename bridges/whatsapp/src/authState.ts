/**
 * The WhatsApp session on disk (the linked device's keys), in Baileys'
 * multi-file layout: `creds.json` and one `<type>-<id>.json` per key. Unlike
 * Baileys' useMultiFileAuthState, every file is written atomically (a
 * temporary file, fsync, rename), `creds.json` keeps its previous version in
 * `creds.json.bak`, a damaged `creds.json` is restored from that backup (or
 * refused: never a silent new identity), and a failed save is reported, not
 * thrown. Only the library's own files are ever deleted.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { BufferJSON, initAuthCreds, proto } from '@whiskeysockets/baileys';
import type { AuthenticationCreds, AuthenticationState, SignalDataTypeMap } from '@whiskeysockets/baileys';

/** The key types Baileys stores (SignalDataTypeMap), as file name prefixes. */
const KEY_TYPES = ['pre-key', 'session', 'sender-key', 'sender-key-memory', 'app-state-sync-key', 'app-state-sync-version',
  'lid-mapping', 'device-list', 'tctoken', 'identity-key'];
/** A file of the library's: creds.json, its backup, a key file, or one of our temporary files. */
const OWN_FILE = new RegExp(`^(creds\\.json(\\.bak)?|(${KEY_TYPES.map((t) => t.replace(/-/g, '\\-')).join('|')})-.+\\.json|.+\\.json(\\.bak)?\\.[0-9a-f]+\\.tmp)$`);

export function isAuthFile(name: string): boolean {
  return OWN_FILE.test(name);
}

/** Deletes the session's files (and only those) in dir; returns how many. */
export function removeAuthFiles(dir: string): number {
  let names: string[];
  try { names = readdirSync(dir); } catch { return 0; }
  let n = 0;
  for (const name of names) {
    if (!isAuthFile(name)) continue;
    rmSync(path.join(dir, name), { force: true });
    n++;
  }
  return n;
}

/** Baileys' file name for a key: `/` and `:` are not kept in names. */
const fileName = (file: string): string => file.replace(/\//g, '__').replace(/:/g, '-');

/** Writes data to file atomically: a temporary file beside it, fsync, rename over. */
async function writeAtomic(file: string, data: string): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
}

function parseCreds(text: string): AuthenticationCreds {
  const c = JSON.parse(text, BufferJSON.reviver) as Partial<AuthenticationCreds> | null;
  if (typeof c !== 'object' || c === null || !c.noiseKey || !c.signedIdentityKey || typeof c.registrationId !== 'number') {
    throw new Error('not a complete session (keys missing)');
  }
  return c as AuthenticationCreds;
}

export interface AtomicAuthState {
  state: AuthenticationState;
  /** Saves creds.json (after backing up the previous one); false (and onError) when it failed. */
  saveCreds: () => Promise<boolean>;
  /** Resolves once every write started so far (creds and keys) has ended, saved or failed. */
  flush: () => Promise<void>;
}

export interface AuthStateOptions {
  /** A save failed (once per distinct message until one succeeds again). */
  onError: (message: string) => void;
  /** Something worth saying that is not an error (a restored backup, a save working again). */
  onWarn: (message: string) => void;
}

export async function useAtomicAuthState(dir: string, opts: AuthStateOptions): Promise<AtomicAuthState> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const credsFile = path.join(dir, 'creds.json');
  const backupFile = `${credsFile}.bak`;
  // One write at a time per file.
  const chains = new Map<string, Promise<unknown>>();
  const serial = <T>(file: string, job: () => Promise<T>): Promise<T> => {
    const run = (chains.get(file) ?? Promise.resolve()).then(job, job);
    chains.set(file, run.catch(() => {}));
    return run;
  };

  const readText = async (file: string): Promise<string | null> => {
    try { return await readFile(file, 'utf8'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  };

  let creds: AuthenticationCreds;
  let credsOnDiskGood = false;
  const text = await readText(credsFile);
  if (text === null) {
    const bak = await readText(backupFile);
    if (bak === null) {
      creds = initAuthCreds(); // never linked: a new identity, shown as a QR code
    } else {
      try { creds = parseCreds(bak); } catch (e) {
        throw new Error(`the WhatsApp session in ${dir} is damaged (creds.json is missing and creds.json.bak: ${(e as Error).message}); restore it, or run with --relink to link again`);
      }
      opts.onWarn(`creds.json was missing in ${dir}; using the backup creds.json.bak`);
    }
  } else {
    try {
      creds = parseCreds(text);
      credsOnDiskGood = true;
    } catch (e) {
      const why = (e as Error).message;
      const bak = await readText(backupFile);
      let restored: AuthenticationCreds | null = null;
      try { restored = bak === null ? null : parseCreds(bak); } catch { restored = null; }
      if (!restored) {
        throw new Error(`the WhatsApp session in ${dir} is damaged (creds.json: ${why}) and has no usable backup (creds.json.bak); restore it, or run with --relink to link again`);
      }
      creds = restored;
      opts.onWarn(`creds.json in ${dir} is damaged (${why}); using the backup creds.json.bak`);
    }
  }

  const readKey = async (file: string): Promise<unknown> => {
    try {
      const t = await readText(path.join(dir, fileName(file)));
      return t === null ? null : JSON.parse(t, BufferJSON.reviver) as unknown;
    } catch {
      return null; // a damaged key is a missing key: Baileys asks for it again
    }
  };
  const writeKey = (file: string, value: unknown): Promise<void> => {
    const p = path.join(dir, fileName(file));
    return serial(p, () => writeAtomic(p, JSON.stringify(value, BufferJSON.replacer)));
  };
  const removeKey = (file: string): Promise<void> => {
    const p = path.join(dir, fileName(file));
    return serial(p, () => unlink(p).catch(() => {}));
  };

  let lastError: string | null = null;
  const saveCreds = (): Promise<boolean> => serial(credsFile, async () => {
    try {
      // The version now on disk becomes the backup (only one known to be whole).
      if (credsOnDiskGood) {
        const tmp = `${backupFile}.${randomBytes(6).toString('hex')}.tmp`;
        await copyFile(credsFile, tmp);
        await rename(tmp, backupFile);
      }
      await writeAtomic(credsFile, JSON.stringify(creds, BufferJSON.replacer));
      credsOnDiskGood = true;
      if (lastError !== null) opts.onWarn(`the WhatsApp session is saved again in ${dir}`);
      lastError = null;
      return true;
    } catch (e) {
      const msg = `cannot save the WhatsApp session in ${dir}: ${(e as Error).message}; the bridge goes on, but a restart may need --relink if this lasts`;
      if (msg !== lastError) opts.onError(msg);
      lastError = msg;
      return false;
    }
  });

  return {
    state: {
      creds,
      keys: {
        get: async <T extends keyof SignalDataTypeMap>(type: T, ids: string[]) => {
          const data: Record<string, SignalDataTypeMap[T]> = {};
          await Promise.all(ids.map(async (id) => {
            let value = await readKey(`${type}-${id}.json`);
            if (type === 'app-state-sync-key' && value) value = proto.Message.AppStateSyncKeyData.fromObject(value);
            if (value !== null && value !== undefined) data[id] = value as SignalDataTypeMap[T];
          }));
          return data;
        },
        set: async (data) => {
          const jobs: Promise<void>[] = [];
          for (const [type, entries] of Object.entries(data)) {
            for (const [id, value] of Object.entries(entries)) {
              const file = `${type}-${id}.json`;
              jobs.push(value ? writeKey(file, value) : removeKey(file));
            }
          }
          await Promise.all(jobs);
        },
      },
    },
    saveCreds,
    flush: async () => { await Promise.all([...chains.values()]); },
  };
}
