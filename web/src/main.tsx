/* Entry point: take a pairing link out of the address bar, open the
 * workspace it names (or the last one used), render, register the service
 * worker when the page is a secure context. */
import { render } from 'preact';
import './styles.css';
import { App } from './app';
import { model } from './state';
import { PairingError, parsePairing, takePairingFragment } from './pairing';
import * as store from './storage';

/** Stores the workspace a `#pair=` link names; true when there was one. */
function pairFromFragment(): boolean {
  const fragment = takePairingFragment();
  if (!fragment) return false;
  model.pairingError = null;
  {
    try {
      const p = parsePairing(fragment, location);
      const existing = store.listWorkspaces().find((w) => w.workspaceId === p.workspaceId);
      store.saveWorkspace({
        workspaceId: p.workspaceId, url: p.url, token: p.token, device: false,
        name: existing?.name ?? p.workspaceId, pairedAt: Date.now(),
      });
      store.setCurrentWorkspaceId(p.workspaceId);
    } catch (e) {
      model.pairingError = e instanceof PairingError ? e.message : 'The pairing link could not be read.';
    }
  }
  return true;
}

function boot(): void {
  pairFromFragment();
  model.workspaces = store.listWorkspaces();
  const currentId = store.currentWorkspaceId();
  const w = model.workspaces.find((x) => x.workspaceId === currentId) ?? (model.workspaces.length === 1 ? model.workspaces[0] : undefined);
  if (w) model.open(w);
  const root = document.getElementById('app');
  if (root) render(<App />, root);
  // A pairing link opened while the app is already open.
  window.addEventListener('hashchange', () => {
    if (!pairFromFragment()) return;
    model.workspaces = store.listWorkspaces();
    const id = store.currentWorkspaceId();
    const next = model.workspaces.find((x) => x.workspaceId === id);
    if (next && !model.pairingError) model.open(next);
    model.changed();
  });
  // The service worker precaches the whole app: only once the page has
  // loaded, so it never competes with the first screen for bandwidth.
  if (window.isSecureContext && 'serviceWorker' in navigator) {
    const register = () => {
      setTimeout(() => {
        navigator.serviceWorker.register('./sw.js', { scope: './' }).catch(() => undefined);
      }, 3000);
    };
    if (document.readyState === 'complete') register();
    else window.addEventListener('load', register, { once: true });
  }
}

boot();
