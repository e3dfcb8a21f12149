/*
 * The key a workspace's tokens are signed and checked with. The secret in
 * SecretStorage never reaches the helper: it gets this key, derived for its
 * workspace, as `auth.secret`, so a key or token leaked from one workspace is
 * worthless for another. Same formula as `companion-helper serve` and
 * `token` use with the standalone secret file:
 *
 *   key = hex(HMAC-SHA256(key = UTF-8 of the stored secret text,
 *                         msg = UTF-8 of "companion-workspace-key/v1:" + workspaceId))
 *
 * No vscode import.
 */
import { createHmac } from 'node:crypto';

export const WORKSPACE_KEY_CONTEXT = 'companion-workspace-key/v1:';

/** 64 lowercase hex digits: the HS256 key for this workspace id. */
export function workspaceKey(storedSecret: string, workspaceId: string): string {
  if (!storedSecret) throw new Error('workspaceKey: the stored secret is empty');
  if (!workspaceId) throw new Error('workspaceKey: the workspace id is empty');
  return createHmac('sha256', Buffer.from(storedSecret, 'utf8'))
    .update(Buffer.from(WORKSPACE_KEY_CONTEXT + workspaceId, 'utf8'))
    .digest('hex');
}
