#!/usr/bin/env bash
# Install test for the .deb: debootstraps a minimal Debian 12 root (cached
# in $COMPANION_ROOT_CACHE, default /var/tmp/companion-bookworm-root.tar),
# installs the package there with apt (so its computed dependencies must
# resolve), then runs --version, checks the files, starts `serve` inside the
# root and does a token-authenticated /ws round trip to it from outside, and
# removes the package. Needs root and Debian's mirror.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
deb=$(bash "$here/package/build-deb.sh")
version=$(sed -n 's/^project(companion VERSION \([0-9.]*\).*/\1/p' "$here/CMakeLists.txt")
cache=${COMPANION_ROOT_CACHE:-/var/tmp/companion-bookworm-root.tar}
root=$(mktemp -d /tmp/companion-root-XXXXXX)
serve_pid=""

cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null || true
  for m in proc dev/pts dev sys; do umount -l "$root/$m" 2>/dev/null || true; done
  rm -rf "$root"
}
trap cleanup EXIT

command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
if [ -f "$cache" ]; then
  tar -C "$root" -xf "$cache"
else
  echo "install-test: debootstrap bookworm (minbase) into $root"
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
  tar -C "$root" -cf "$cache" .
fi
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount -t devpts devpts "$root/dev/pts" 2>/dev/null || true
cp /etc/resolv.conf "$root/etc/resolv.conf"

echo "install-test: apt install $(basename "$deb")"
cp "$deb" "$root/tmp/"
chmod 644 "$root/tmp/$(basename "$deb")"
chroot "$root" sh -c "apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /tmp/$(basename "$deb") >/dev/null 2>&1"

got=$(chroot "$root" companion-helper --version)
[ "$got" = "companion-helper $version" ] || { echo "install-test: --version said '$got'" >&2; exit 1; }
echo "install-test: $got"
for f in /usr/bin/companion-helper /usr/lib/companion-helper/companion-git.so \
         /usr/share/man/man1/companion-helper.1.gz \
         /usr/lib/systemd/user/companion-helper.service /usr/share/doc/companion-helper/copyright \
         /usr/share/doc/companion-helper/changelog.gz; do
  [ -e "$root$f" ] || { echo "install-test: missing $f" >&2; exit 1; }
done
echo "install-test: files in place (binary, man page, user unit, docs)"

mkdir -p "$root/srv/ws"
echo "hello from the chroot" > "$root/srv/ws/README.txt"
# A repository, so that git.status loads the git module from where the
# package put it (the chroot has no git: the .git is copied in).
git -c init.defaultBranch=main init -q "$root/srv/ws"
chroot "$root" env HOME=/root XDG_CONFIG_HOME=/root/.config \
  companion-helper serve --workspace /srv/ws --port 0 > "$root/tmp/serve.out" 2>"$root/tmp/serve.err" &
serve_pid=$!
for _ in $(seq 1 100); do grep -q 'Press Ctrl+C' "$root/tmp/serve.out" && break; sleep 0.1; done
url=$(awk '/URL:/ {print $2}' "$root/tmp/serve.out")
wsid=$(awk '/Workspace id:/ {print $3}' "$root/tmp/serve.out")
# Its stdout is a file, not a terminal: the token goes to a 0600 file.
token_file=$(awk '/Token file:/ {print $3}' "$root/tmp/serve.out")
[ -n "$token_file" ] && token=$(cat "$root$token_file")
[ -n "$url" ] && [ -n "$token" ] || { cat "$root/tmp/serve.out" "$root/tmp/serve.err" >&2; exit 1; }

[ -d "$here/tests/integration/node_modules/ws" ] || (cd "$here/tests/integration" && npm ci --no-audit --no-fund --loglevel=error)
URL="$url" TOKEN="$token" WSID="$wsid" node --input-type=module -e "
import WebSocket from '$here/tests/integration/node_modules/ws/index.js';
const ws = new WebSocket(process.env.URL);
const fail = (m) => { console.error('install-test: ' + m); process.exit(1); };
setTimeout(() => fail('no answer in 10 s'), 10000);
ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', id: 'a', data: { token: process.env.TOKEN, workspaceId: process.env.WSID } })));
ws.on('message', (raw) => {
  const m = JSON.parse(raw);
  if (m.type === 'auth_response') {
    if (!m.data.success) fail('auth refused: ' + JSON.stringify(m.data));
    ws.send(JSON.stringify({ type: 'command', id: 'c', data: { name: 'fs.read', args: { path: 'README.txt' } } }));
  } else if (m.id === 'c') {
    if (!m.data.success || m.data.result.content !== 'hello from the chroot\n') fail('fs.read: ' + JSON.stringify(m.data));
    ws.send(JSON.stringify({ type: 'command', id: 'g', data: { name: 'git.status' } }));
  } else if (m.id === 'g') {
    if (!m.data.success || m.data.result.branch !== 'main' || !m.data.result.untracked.some((u) => u.path === 'README.txt')) fail('git.status: ' + JSON.stringify(m.data));
    console.log('install-test: /ws round trip: authenticated, fs.read and git.status (the git module) answered from the installed helper');
    process.exit(0);
  }
});
ws.on('error', (e) => fail(String(e)));
"
kill -TERM "$serve_pid"; wait "$serve_pid" || { echo "install-test: serve did not stop cleanly" >&2; exit 1; }
serve_pid=""

chroot "$root" sh -c "DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq companion-helper >/dev/null 2>&1"
[ ! -e "$root/usr/bin/companion-helper" ] || { echo "install-test: still installed after remove" >&2; exit 1; }
echo "install-test: removed cleanly"
echo "install-test: $(du -k "$deb" | cut -f1) KiB $(basename "$deb"): 4 passed, 0 failed"
