/**
 * Self-contained HTML pages: inline CSS and inline SVG only (no scripts, fonts, images or links
 * to fetch), so a report opens offline and can be mailed as one file.
 */
import { esc } from './svg.js';

export interface PageSection {
  title: string;
  /** Raw markup (SVG, tables). */
  body: string;
  /** A sentence under the title (plain text). */
  note?: string;
}

const CSS = `
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1440px;padding:0 16px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:0 0 6px}
.meta{color:#555;font-size:13px;margin-bottom:18px}
.grid{display:flex;flex-wrap:wrap;gap:16px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 14px;max-width:100%;overflow-x:auto}
section p.note{color:#555;font-size:12px;margin:0 0 8px;max-width:640px}
table{border-collapse:collapse;font-size:12px} th,td{border:1px solid #ddd;padding:3px 8px;text-align:right} th{background:#f0f0f0}
td.l,th.l{text-align:left}
pre{font-size:12px;background:#f6f6f6;padding:8px;max-height:420px;overflow:auto}
`;

export function htmlSection(s: PageSection): string {
  return `<section><h2>${esc(s.title)}</h2>${s.note ? `<p class="note">${esc(s.note)}</p>` : ''}${s.body}</section>`;
}

/** A full page: a title, a line of metadata, then the sections in a wrapping grid. */
export function htmlPage(title: string, meta: string, sections: readonly PageSection[]): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${esc(title)}</h1>
<div class="meta">${esc(meta)}</div>
<div class="grid">
${sections.map(htmlSection).join('\n')}
</div>
</body>
</html>
`;
}

/** A table; cells are plain text, the first column left-aligned. */
export function htmlTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const head = `<tr>${headers.map((h, i) => `<th${i === 0 ? ' class="l"' : ''}>${esc(h)}</th>`).join('')}</tr>`;
  const body = rows.map((r) => `<tr>${r.map((c, i) => `<td${i === 0 ? ' class="l"' : ''}>${esc(c)}</td>`).join('')}</tr>`).join('');
  return `<table>${head}${body}</table>`;
}
