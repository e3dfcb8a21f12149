/* Service worker (registered only in a secure context): the app shell is
 * precached so the app opens offline and installs as a PWA. Hashed assets
 * are served from the cache; the page itself network-first. The WebSocket
 * and /health are never touched. __PRECACHE__ and __VERSION__ are filled in
 * by the build. */
declare const __PRECACHE__: string[];
declare const __VERSION__: string;

const sw = self as unknown as ServiceWorkerGlobalScope;
const CACHE = `companion-${__VERSION__}`;

sw.addEventListener('install', (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(__PRECACHE__)).then(() => sw.skipWaiting()));
});

sw.addEventListener('activate', (e) => {
  e.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('companion-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => sw.clients.claim()),
  );
});

sw.addEventListener('fetch', (e) => {
  const req = e.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== sw.location.origin) return;
  if (url.pathname.endsWith('/ws') || url.pathname.endsWith('/health')) return;
  if (req.mode === 'navigate') {
    e.respondWith(fetch(req).catch(async () => (await caches.match('./index.html', { ignoreSearch: true })) ?? Response.error()));
    return;
  }
  if (url.pathname.includes('/assets/')) {
    e.respondWith(caches.match(req).then((hit) => hit ?? fetch(req)));
  }
});

sw.addEventListener('notificationclick', (e) => {
  e.notification.close();
  e.waitUntil(
    sw.clients.matchAll({ type: 'window' }).then((list) => {
      const c = list[0];
      return c ? c.focus().then(() => undefined) : sw.clients.openWindow('./').then(() => undefined);
    }),
  );
});
