/* What the app keeps in localStorage: the paired workspaces (each with the
 * token it connects with), which one is open, the last event seq seen and
 * the notification list of each. Nothing here is sent anywhere but to the
 * workspace's own helper. */

export interface StoredWorkspace {
  workspaceId: string;
  /** ws:// or wss:// URL of the helper's /ws. */
  url: string;
  token: string;
  /** A pairing token was exchanged for a device token. */
  device: boolean;
  name: string;
  pairedAt: number;
}

export interface Note {
  seq: number;
  event: string;
  at: number;
  title: string;
  body: string;
  level: 'info' | 'ok' | 'warning' | 'error';
  tail?: string;
}

const KEY_WS = 'companion.workspaces';
const KEY_CURRENT = 'companion.current';
const seqKey = (id: string) => `companion.seq.${id}`;
const notesKey = (id: string) => `companion.notes.${id}`;
const MAX_NOTES = 200;

function read<T>(key: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(key);
    return raw === null ? fallback : (JSON.parse(raw) as T);
  } catch {
    return fallback;
  }
}

function write(key: string, value: unknown): void {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    /* storage full or disabled: the app still works for this visit */
  }
}

function valid(w: unknown): w is StoredWorkspace {
  if (typeof w !== 'object' || w === null) return false;
  const o = w as Record<string, unknown>;
  return typeof o.workspaceId === 'string' && typeof o.url === 'string' && typeof o.token === 'string';
}

export function listWorkspaces(): StoredWorkspace[] {
  const all = read<unknown[]>(KEY_WS, []);
  return Array.isArray(all) ? all.filter(valid) : [];
}

export function saveWorkspace(w: StoredWorkspace): void {
  const others = listWorkspaces().filter((x) => x.workspaceId !== w.workspaceId);
  write(KEY_WS, [...others, w]);
}

export function updateWorkspace(id: string, patch: Partial<StoredWorkspace>): StoredWorkspace | undefined {
  const all = listWorkspaces();
  const i = all.findIndex((x) => x.workspaceId === id);
  if (i < 0) return undefined;
  const next = { ...all[i], ...patch } as StoredWorkspace;
  all[i] = next;
  write(KEY_WS, all);
  return next;
}

/** Forget: the token, the seq and the notifications go. */
export function forgetWorkspace(id: string): void {
  write(KEY_WS, listWorkspaces().filter((x) => x.workspaceId !== id));
  localStorage.removeItem(seqKey(id));
  localStorage.removeItem(notesKey(id));
  if (currentWorkspaceId() === id) localStorage.removeItem(KEY_CURRENT);
}

export function currentWorkspaceId(): string | null {
  return localStorage.getItem(KEY_CURRENT);
}

export function setCurrentWorkspaceId(id: string): void {
  localStorage.setItem(KEY_CURRENT, id);
}

export function lastSeq(id: string): number | null {
  const v = read<unknown>(seqKey(id), null);
  return typeof v === 'number' && v >= 0 ? v : null;
}

export function setLastSeq(id: string, seq: number): void {
  write(seqKey(id), seq);
}

export function loadNotes(id: string): Note[] {
  const v = read<unknown>(notesKey(id), []);
  return Array.isArray(v) ? (v as Note[]) : [];
}

export function saveNotes(id: string, notes: Note[]): Note[] {
  const kept = notes.slice(-MAX_NOTES);
  write(notesKey(id), kept);
  return kept;
}
