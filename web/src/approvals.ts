/* Approvals as the helper describes them (docs/protocol.md, Approvals):
 * `approvalId` is a number, `action` the exact thing to run (an object:
 * for a task {task, command, args, cwd, folder}), `requestedBy` an object
 * naming the asking session. This module turns a payload of
 * `approval.requested` or `approvals.list` into what the screens show.
 * Pure: no DOM, so the unit tests run it in Node. */
import type { Approval } from './protocol';
import { isObject, num, str } from './protocol';

/** The id as the app keys it: the helper's number written out ('' if none). */
export function approvalIdOf(v: unknown): string {
  if (typeof v === 'number' && Number.isInteger(v) && v > 0) return String(v);
  if (typeof v === 'string' && /^[1-9][0-9]*$/.test(v)) return v;
  return '';
}

/** The action in one or two lines: a task's command line and where it runs;
 * anything else (an agent's tool call) as its JSON. */
export function actionText(action: unknown): string {
  if (typeof action === 'string') return action;
  if (!isObject(action)) return '';
  if (typeof action.command === 'string') {
    const args = Array.isArray(action.args) ? action.args.map((a) => String(a)) : [];
    const quoted = [action.command, ...args].map((w) => (w === '' || /[\s"'\\]/.test(w) ? JSON.stringify(w) : w)).join(' ');
    const folder = str(action.folder);
    const cwd = str(action.cwd, '.');
    const where = folder ? (cwd === '.' ? folder : `${folder}/${cwd}`) : cwd === '.' ? '' : cwd;
    return where ? `${quoted}\nin ${where}` : quoted;
  }
  return JSON.stringify(action, null, 2);
}

/** Who asked: the device's name when the helper gives one, else the user. */
export function requesterText(v: unknown): string {
  if (typeof v === 'string') return v || 'someone';
  if (!isObject(v)) return 'someone';
  return str(v.deviceName) || str(v.userId) || 'someone';
}

export function parseApproval(p: Record<string, unknown>): Approval | null {
  const approvalId = approvalIdOf(p.approvalId);
  if (!approvalId) return null;
  return {
    approvalId, kind: str(p.kind), title: str(p.title, `Approval ${approvalId}`), action: actionText(p.action),
    requestedBy: requesterText(p.requestedBy),
    expiresAt: num(p.expiresAt), options: Array.isArray(p.options) ? p.options.filter((o): o is string => typeof o === 'string') : [],
  };
}
