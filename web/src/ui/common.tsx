import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { Icon } from './icons';

/** A screen's title bar: a heading that takes focus when the screen opens
 * by navigation (not by the tab bar), an optional back button, actions. */
export function ScreenHeader({ title, back, children, sub }: { title: string; back?: () => void; children?: ComponentChildren; sub?: ComponentChildren }) {
  const h = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    const active = document.activeElement;
    if (!active || active === document.body || !active.isConnected) h.current?.focus();
  }, [title]);
  return (
    <div class="screen-head">
      {back && (
        <button type="button" class="icon-btn" onClick={back} aria-label="Back">
          <Icon name="back" />
        </button>
      )}
      <div class="screen-title">
        <h1 ref={h} tabIndex={-1}>{title}</h1>
        {sub && <div class="sub">{sub}</div>}
      </div>
      <div class="actions">{children}</div>
    </div>
  );
}

export function RefreshButton({ onClick, busy }: { onClick: () => void; busy: boolean }) {
  return (
    <button type="button" class="icon-btn" onClick={onClick} aria-label="Refresh" aria-busy={busy}>
      <Icon name="refresh" />
    </button>
  );
}

export function ErrorBox({ text }: { text: string | null }) {
  if (!text) return null;
  return <p class="error" role="alert">{text}</p>;
}

export function Loading({ show }: { show: boolean }) {
  return show ? <p class="muted" role="status">Loading…</p> : null;
}

export function relTime(ms: number): string {
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 45) return 'just now';
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  if (s < 45 * 86400) return `${Math.round(s / 86400)} d ago`;
  return new Date(ms).toLocaleDateString();
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
