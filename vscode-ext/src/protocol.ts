/*
 * Types of the control plane (PROTOCOL.md section 1, docs/protocol.md): the
 * requests the extension sends to companion-helper and those it answers.
 * No vscode import: shared by the extension and the Node tests.
 */

export interface WorkspaceFolderParam {
  uri: string;
  name: string;
}

export interface InitializeParams {
  processId: number;
  clientInfo: { name: string; version: string };
  workspaceId: string;
  workspaceFolders: WorkspaceFolderParam[];
  settings: HelperSettings;
  /** Absolute paths of the extension's own files (storage, logs): never served. Optional. */
  privatePaths?: string[];
}

export interface InitializeResult {
  serverInfo: { name: string; version: string };
  capabilities: { commands: string[] };
  workspaceId?: string;
}

export interface StartResult {
  url: string;
  host: string;
  port: number;
}

export interface ClientInfo {
  sessionId: string;
  userId: string;
  remoteAddress: string;
  connectedAt: number;
  scopes?: string[];
  expiresAt?: number;
}

export interface StatusResult {
  state: 'running' | 'stopped';
  url: string | null;
  host?: string;
  port?: number | null;
  startedAt: number | null;
  workspaceId?: string;
  version?: string;
  clients: ClientInfo[];
  counters: Record<string, number>;
}

export type Scope = 'read' | 'run' | 'editor' | 'approve' | 'agent' | 'write';

export interface IssueTokenParams {
  userId: string;
  scopes: Scope[];
  ttlSeconds: number;
}

export interface IssueTokenResult {
  token: string;
  expiresAt: number;
  url: string;
  workspaceId: string;
}

export interface ClientEventParams {
  sessionId: string;
  userId: string;
  remoteAddress: string;
  reason?: string;
}

export interface CommandExecutedParams {
  sessionId: string;
  userId: string;
  name: string;
  success: boolean;
  durationMs: number;
}

export interface LogMessageParams {
  type: 1 | 2 | 3 | 4;
  message: string;
}

/* Requests the helper sends to the editor. */
export interface EditorOpenParams {
  uri: string;
  path: string;
  line?: number;
}
export interface EditorShowMessageParams {
  text: string;
  severity: 'info' | 'warning' | 'error';
}
export interface EditorDiagnosticsParams {
  path?: string;
}
export interface EditorDiagnostic {
  path: string;
  line: number;
  severity: 'error' | 'warning' | 'info' | 'hint';
  message: string;
  source: string;
}
export interface EditorExecuteCommandParams {
  command: string;
  args: unknown[];
}

export interface EditorHandlers {
  open(p: EditorOpenParams): Promise<{ opened: boolean }>;
  showMessage(p: EditorShowMessageParams): Promise<{ shown: boolean }>;
  diagnostics(p: EditorDiagnosticsParams): Promise<{ diagnostics: EditorDiagnostic[] }>;
  executeCommand(p: EditorExecuteCommandParams): Promise<unknown>;
}

/* vscode-lm agents (agents spec, "vscode-lm agents"): the helper asks the editor's language model. */

export interface LmMessage {
  role: 'user' | 'assistant';
  text: string;
}
/** editor/lm: the conversation so far, the last message the new prompt. */
export interface LmParams {
  turnId: string;
  vendor?: string;
  family?: string;
  messages: LmMessage[];
}
/** editor/lm's answer; model is "<vendor>/<family>/<id>". */
export interface LmResult {
  stopReason: 'end_turn' | 'cancelled' | 'max_tokens';
  model?: string;
}
/** companion/lmChunk (editor -> helper): a fragment of the answer. */
export interface LmChunkParams {
  turnId: string;
  text: string;
}
/** editor/lmCancel (helper -> editor). */
export interface LmCancelParams {
  turnId: string;
}

/* Approvals (docs/protocol.md, "Approvals"). */

/** The answers an approval may offer. */
export type ApprovalOption = 'allow_once' | 'allow_always' | 'deny';
/** How an approval ended: an answer, no answer in time, or its asker gone. */
export type ApprovalOutcome = ApprovalOption | 'expired' | 'withdrawn';

export const APPROVAL_OPTIONS: readonly ApprovalOption[] = ['allow_once', 'allow_always', 'deny'];

/** A task's action: the exact command the approval is for. Other kinds carry their own fields. */
export interface ApprovalAction {
  task?: string;
  command?: string;
  args?: string[];
  cwd?: string;
  folder?: string;
  [key: string]: unknown;
}

/** companion/approvalRequested, and each entry of approvals/list. */
export interface Approval {
  approvalId: number;
  kind: string;
  title: string;
  action: ApprovalAction;
  requestedBy: { userId: string; sessionId: string };
  createdAt: number;
  expiresAt: number;
  options: ApprovalOption[];
}

/** companion/approvalResolved: decidedBy is "editor", a client's user id, or the helper's words for expiry and withdrawal. */
export interface ApprovalResolvedParams {
  approvalId: number;
  decision: ApprovalOutcome;
  decidedBy: string;
  decidedAt: number;
}

export interface ApprovalDecideParams {
  approvalId: number;
  decision: ApprovalOption;
}

/** approval/decide's answer: took is false when someone answered first (message says who). */
export interface ApprovalDecideResult {
  approvalId: number;
  decision: ApprovalOption;
  took: boolean;
  outcome: 'took' | 'unknown' | 'decided' | 'not_offered';
  message: string;
}

export interface ApprovalsListResult {
  approvals: Approval[];
}

/* The nested settings object of PROTOCOL.md ("settings"); auth.secret is the workspace's derived key. */
export type HelperSettings = Record<string, unknown>;

/** JSON-RPC error code of server/start when the port is taken. */
export const PORT_TAKEN = -32001;
