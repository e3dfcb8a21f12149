/*
 * The editor side of the contract: requests the helper forwards from clients
 * (editor/open, showMessage, diagnostics, executeCommand). Approvals, which
 * replaced editor/confirm, are notifications: see approvals.ts.
 */
import * as vscode from 'vscode';
import type {
  EditorDiagnostic, EditorDiagnosticsParams, EditorExecuteCommandParams,
  EditorHandlers, EditorOpenParams, EditorShowMessageParams,
} from './protocol';
import { config } from './settings';

function severityName(s: vscode.DiagnosticSeverity): EditorDiagnostic['severity'] {
  switch (s) {
    case vscode.DiagnosticSeverity.Error:
      return 'error';
    case vscode.DiagnosticSeverity.Warning:
      return 'warning';
    case vscode.DiagnosticSeverity.Information:
      return 'info';
    default:
      return 'hint';
  }
}

function mapDiagnostic(uri: vscode.Uri, d: vscode.Diagnostic): EditorDiagnostic {
  return {
    path: uri.fsPath,
    line: d.range.start.line + 1,
    severity: severityName(d.severity),
    message: d.message,
    source: d.source ?? '',
  };
}

/** Makes a command's result JSON-safe (functions, cycles and URIs become plain data). */
function jsonSafe(v: unknown): unknown {
  if (v === undefined) return null;
  try {
    return JSON.parse(JSON.stringify(v)) as unknown;
  } catch {
    return null;
  }
}

export function editorHandlers(log: vscode.LogOutputChannel): EditorHandlers {
  return {
    async open(p: EditorOpenParams) {
      const uri = p.uri ? vscode.Uri.parse(p.uri, true) : vscode.Uri.file(p.path);
      const line = Math.max(0, (p.line ?? 1) - 1);
      const doc = await vscode.workspace.openTextDocument(uri);
      const pos = new vscode.Position(Math.min(line, Math.max(0, doc.lineCount - 1)), 0);
      await vscode.window.showTextDocument(doc, { selection: new vscode.Range(pos, pos), preview: false });
      log.info(`editor/open ${uri.fsPath}:${line + 1}`);
      return { opened: true };
    },

    showMessage(p: EditorShowMessageParams) {
      const text = `Companion: ${p.text}`;
      // Not awaited: the answer must not wait for the user to close the toast.
      if (p.severity === 'error') void vscode.window.showErrorMessage(text);
      else if (p.severity === 'warning') void vscode.window.showWarningMessage(text);
      else void vscode.window.showInformationMessage(text);
      return Promise.resolve({ shown: true });
    },

    diagnostics(p: EditorDiagnosticsParams) {
      const out: EditorDiagnostic[] = [];
      if (p.path) {
        const uri = vscode.Uri.file(p.path);
        for (const d of vscode.languages.getDiagnostics(uri)) out.push(mapDiagnostic(uri, d));
      } else {
        for (const [uri, list] of vscode.languages.getDiagnostics()) {
          if (uri.scheme !== 'file') continue;
          for (const d of list) out.push(mapDiagnostic(uri, d));
        }
      }
      return Promise.resolve({ diagnostics: out });
    },

    async executeCommand(p: EditorExecuteCommandParams) {
      // The helper checks the allowlist too; this is the editor's own check.
      const allowed = config().get<string[]>('editorCommands', []);
      if (!allowed.includes(p.command)) {
        throw new Error(`${p.command} is not in companion.editorCommands`);
      }
      log.info(`editor/executeCommand ${p.command}`);
      const result: unknown = await vscode.commands.executeCommand(p.command, ...(Array.isArray(p.args) ? p.args : []));
      return jsonSafe(result);
    },
  };
}
