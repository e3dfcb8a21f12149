/* The shapes of the helper's WebSocket messages (docs/protocol.md), as far
 * as the app reads them. Everything that arrives is checked where it is
 * used: the helper is trusted to follow the protocol, but a field missing
 * must not break a screen. */

export type Id = string;

export interface Envelope {
  type: string;
  id?: Id | number;
  data?: unknown;
  timestamp?: number;
}

export interface ErrorInfo {
  code: string;
  message: string;
}

export interface AuthOk {
  success: true;
  sessionId: string;
  userId: string;
  workspaceId: string;
  scopes: string[];
  heartbeatIntervalMs?: number;
  expiresAt?: number;
  /** A long-lived token given in exchange for a pairing token (issue 17). */
  deviceToken?: string;
}

export interface AuthFail {
  success: false;
  error: ErrorInfo;
}

export interface WorkspaceInfo {
  workspaceId: string;
  name: string;
  folders: { name: string; path: string }[];
  version: string;
}

export interface FileStatus {
  path: string;
  status?: string;
  from?: string;
}

export interface GitStatus {
  branch: string | null;
  head: string | null;
  detached: boolean;
  unborn: boolean;
  upstream: string | null;
  /** The upstream branch no longer exists (deleted on the remote and pruned). */
  upstreamGone?: boolean;
  ahead: number;
  behind: number;
  /** The workspace folder this status is of (the first that is a repository). */
  folder?: string;
  staged: FileStatus[];
  unstaged: FileStatus[];
  untracked: FileStatus[];
  conflicted: FileStatus[];
  truncated: boolean;
}

export interface Commit {
  id: string;
  shortId: string;
  summary: string;
  author: string;
  email: string;
  time: number;
}

export interface DiffFile {
  path: string;
  additions: number;
  deletions: number;
  binary: boolean;
}

export interface GitDiff {
  files: DiffFile[];
  patch: string;
  truncated: boolean;
}

export interface DirEntry {
  name: string;
  type: string;
  size?: number;
}

export interface FsList {
  path: string;
  entries: DirEntry[];
  truncated: boolean;
}

export interface FsRead {
  path: string;
  size: number;
  encoding: 'utf8' | 'base64';
  content: string;
  truncated: boolean;
}

export interface TaskDef {
  name: string;
  command: string;
  args?: string[];
  confirm?: boolean;
}

export interface StreamEnd {
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  truncated: boolean;
  timedOut: boolean;
  cancelled: boolean;
}

export interface EventData {
  event: string;
  seq: number;
  payload?: Record<string, unknown>;
}

/* Approvals and agents (docs/protocol.md "Approvals", "Agents"). */
export interface Approval {
  approvalId: string;
  kind: string;
  title: string;
  action: string;
  requestedBy: string;
  expiresAt: number;
  options: string[];
}

export interface ApprovalResolved {
  approvalId: string;
  decision: string;
  decidedBy: string;
  decidedAt: number;
}

export interface AgentInfo {
  name: string;
  type: string;
  state: string;
  default: boolean;
}

export type AgentChunk =
  | { kind: 'message'; text: string }
  | { kind: 'thought'; text: string }
  | { kind: 'tool'; toolCallId: string; title: string; status: string }
  | { kind: 'plan'; entries: { content: string; status: string }[] }
  | { kind: 'permission'; approvalId: string; toolCallId: string; title: string; options: string[]; expiresAt: number }
  | { kind: 'permission_resolved'; approvalId: string; outcome: string; decidedBy: string };

export const EVENT_KINDS = ['task.started', 'task.finished', 'git.changed', 'file.saved', 'notify'] as const;
export const APPROVAL_EVENTS = ['approval.requested', 'approval.resolved'] as const;

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function str(v: unknown, fallback = ''): string {
  return typeof v === 'string' ? v : fallback;
}

export function num(v: unknown, fallback = 0): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback;
}
