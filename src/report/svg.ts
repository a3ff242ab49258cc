/** Small helpers for writing SVG and HTML as strings: escaping, elements, coordinates. */

/** Escapes text for XML / HTML content and attribute values. */
export function esc(text: string | number): string {
  return String(text).replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;'));
}

/** A coordinate with at most 2 decimals (keeps files small; 0.01 px is below any display). */
export function px(v: number): string {
  const r = Math.round(v * 100) / 100;
  return Object.is(r, -0) ? '0' : String(r);
}

export type Attrs = Record<string, string | number | undefined | null>;

function attrText(attrs: Attrs): string {
  let s = '';
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    s += ` ${k}="${esc(typeof v === 'number' ? px(v) : v)}"`;
  }
  return s;
}

/** `<name attrs>children</name>`, or self-closing without children. Children are raw markup. */
export function el(name: string, attrs: Attrs = {}, children?: string | string[]): string {
  const inner = Array.isArray(children) ? children.join('') : children;
  return inner === undefined || inner === '' ? `<${name}${attrText(attrs)}/>` : `<${name}${attrText(attrs)}>${inner}</${name}>`;
}

/** A text element (content escaped). */
export function text(content: string, attrs: Attrs = {}): string {
  return `<text${attrText(attrs)}>${esc(content)}</text>`;
}

/** Colours for series, distinguishable and readable on white. */
export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

export function seriesColor(i: number): string {
  return PALETTE[i % PALETTE.length]!;
}
