/* Markdown to safe HTML: marked renders, with raw HTML in the source shown
 * as text and images as links (nothing is fetched from elsewhere), then
 * DOMPurify keeps only plain document tags, no style, no event handler,
 * and links to http(s) and mailto only, which open in a new tab. */
import { Marked } from 'marked';
import DOMPurify from 'dompurify';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const md = new Marked({
  gfm: true,
  renderer: {
    html({ text }) {
      return esc(text);
    },
    image({ href, text }) {
      return `<a href="${esc(href)}">${esc(text || href)}</a>`;
    },
  },
});

const ALLOWED_TAGS = ['a', 'p', 'br', 'hr', 'em', 'strong', 'del', 'code', 'pre', 'blockquote', 'ul', 'ol', 'li',
  'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'input', 'span'];

let hooked = false;

export function renderMarkdown(src: string): string {
  if (!hooked) {
    DOMPurify.addHook('afterSanitizeAttributes', (node) => {
      if (node.tagName === 'A') {
        node.setAttribute('target', '_blank');
        node.setAttribute('rel', 'noopener noreferrer');
      }
      if (node.tagName === 'INPUT' && node.getAttribute('type') !== 'checkbox') node.remove();
    });
    hooked = true;
  }
  const html = md.parse(src, { async: false });
  return DOMPurify.sanitize(html, {
    ALLOWED_TAGS,
    ALLOWED_ATTR: ['href', 'title', 'class', 'start', 'type', 'checked', 'disabled', 'align'],
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#)/i,
  });
}
