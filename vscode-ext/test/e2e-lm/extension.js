// Test extension of scripts/e2e-lm.sh (not shipped): registers a language
// model provider (vendor "companion-e2e", one model "scripted-1" of family
// "scripted") with the finalized provider API of VS Code 1.104+. Its model
// answers every request with the same text, in fragments a little apart, so
// the stream can be checked end to end. What it sees goes to the JSON file
// named by COMPANION_E2E_LM_OUT: the models vscode.lm.selectChatModels finds
// for the vendor (at activation and on the command "Companion E2E: Check
// Language Model"), and each request (roles, lengths and the last prompt).
'use strict';
const fs = require('node:fs');
const vscode = require('vscode');

const VENDOR = 'companion-e2e';
const FRAGMENTS = ['Hello', ' from', ' the', ' scripted', ' model', ': ', 'all', ' good', '.'];
const state = { activatedAt: Date.now(), vscodeVersion: vscode.version, checks: [], requests: [] };

function save() {
  const out = process.env.COMPANION_E2E_LM_OUT;
  if (out) fs.writeFileSync(out, JSON.stringify(state, null, 2));
}

const MODEL = {
  id: 'scripted-1',
  name: 'Scripted',
  family: 'scripted',
  version: '1',
  maxInputTokens: 100000,
  maxOutputTokens: 10000,
  capabilities: {},
};

function textOf(message) {
  return message.content.map((p) => (p instanceof vscode.LanguageModelTextPart ? p.value : '')).join('');
}

const provider = {
  provideLanguageModelChatInformation() {
    return [MODEL];
  },
  async provideLanguageModelChatResponse(model, messages, options, progress, token) {
    const req = {
      at: Date.now(),
      model: model.id,
      roles: messages.map((m) => (m.role === vscode.LanguageModelChatMessageRole.User ? 'user' : 'assistant')),
      lastText: messages.length ? textOf(messages[messages.length - 1]) : '',
      initiator: options.requestInitiator,
      cancelled: false,
    };
    state.requests.push(req);
    save();
    const sub = token.onCancellationRequested(() => {
      req.cancelled = true;
      save();
    });
    try {
      for (const f of FRAGMENTS) {
        if (token.isCancellationRequested) {
          req.cancelled = true;
          return;
        }
        req.sent = (req.sent ?? 0) + 1;
        progress.report(new vscode.LanguageModelTextPart(f));
        await new Promise((r) => setTimeout(r, 40));
      }
    } catch (e) {
      req.error = String(e);
      throw e;
    } finally {
      sub.dispose();
      req.endedAt = Date.now();
      save();
    }
  },
  provideTokenCount(_model, text) {
    return Math.ceil((typeof text === 'string' ? text : textOf(text)).length / 4);
  },
};

async function check() {
  const models = await vscode.lm.selectChatModels({ vendor: VENDOR });
  const found = models.map((m) => ({ id: m.id, vendor: m.vendor, family: m.family, name: m.name }));
  state.checks.push({ at: Date.now(), models: found });
  save();
  return found;
}

function activate(context) {
  context.subscriptions.push(
    vscode.lm.registerLanguageModelChatProvider(VENDOR, provider),
    vscode.commands.registerCommand('companionE2eLm.check', async () => {
      const found = await check();
      void vscode.window.showInformationMessage(
        `Companion E2E: ${found.length} model(s): ${found.map((m) => `${m.vendor}/${m.family}/${m.id}`).join(', ')}`,
      );
      return found;
    }),
  );
  save();
  // The registration is picked up asynchronously: look a few times.
  void (async () => {
    for (let i = 0; i < 20; i++) {
      if ((await check()).length) return;
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
}

module.exports = { activate, deactivate() {} };
