/*
 * The vscode part of lm.ts: VS Code's language-model API (vscode.lm) as an
 * LmBackend. selectChatModels picks, LanguageModelChatMessage.User/Assistant
 * carry the conversation, and a LanguageModelError becomes LmModelError.
 */
import * as vscode from 'vscode';
import type { CancellationToken } from 'vscode-jsonrpc/node';
import { LmModelError, type LmBackend, type LmModel } from './lm';
import type { LmMessage } from './protocol';

function modelError(e: unknown): unknown {
  if (e instanceof vscode.LanguageModelError) return new LmModelError(e.message, e.code);
  return e;
}

function wrap(model: vscode.LanguageModelChat): LmModel {
  return {
    id: model.id,
    vendor: model.vendor,
    family: model.family,
    async send(messages: readonly LmMessage[], justification: string, token: CancellationToken) {
      const msgs = messages.map((m) =>
        m.role === 'user' ? vscode.LanguageModelChatMessage.User(m.text) : vscode.LanguageModelChatMessage.Assistant(m.text),
      );
      const cts = new vscode.CancellationTokenSource();
      const sub = token.onCancellationRequested(() => cts.cancel());
      if (token.isCancellationRequested) cts.cancel();
      const done = (): void => {
        sub.dispose();
        cts.dispose();
      };
      let response: vscode.LanguageModelChatResponse;
      try {
        response = await model.sendRequest(msgs, { justification }, cts.token);
      } catch (e) {
        done();
        throw modelError(e);
      }
      return (async function* fragments(): AsyncGenerator<string> {
        try {
          for await (const text of response.text) yield text;
        } catch (e) {
          throw modelError(e);
        } finally {
          done();
        }
      })();
    },
  };
}

export function vscodeLmBackend(): LmBackend {
  return {
    async selectModels(selector) {
      const models = await vscode.lm.selectChatModels(selector);
      return models.map(wrap);
    },
  };
}
