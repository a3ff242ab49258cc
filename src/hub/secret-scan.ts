/**
 * Does a file hold the Hub token? Scanned before every push, streaming (every file, whatever its size: a token
 * pasted into a 2 GB weights file is still a published token), for the token itself and for its base64 forms
 * (standard and URL-safe alphabets, at each of the three byte alignments a token can have inside a longer base64
 * text), so `echo -n "user:$HF_TOKEN" | base64` in a config file is found too.
 */
import * as fs from 'node:fs';

/** The base64 text that encodes `secret` wherever it sits in a longer byte string, for one alignment. */
function base64Core(secret: Buffer, align: 0 | 1 | 2, urlSafe: boolean): string {
  const enc = Buffer.concat([Buffer.alloc(align), secret]).toString('base64').replace(/=+$/, '');
  // characters that mix in the padding bytes before, or the unknown bytes after, are not fixed by the secret
  const start = align === 0 ? 0 : align === 1 ? 2 : 3;
  const end = Math.floor(((align + secret.length) * 8) / 6);
  const core = enc.slice(start, end);
  return urlSafe ? core.replace(/\+/g, '-').replace(/\//g, '_') : core;
}

/** Every byte pattern whose presence means `secret` is in a file (the raw bytes and the base64 forms). */
export function secretNeedles(secret: string): Buffer[] {
  const raw = Buffer.from(secret, 'utf8');
  const forms = new Set<string>();
  for (const align of [0, 1, 2] as const) for (const urlSafe of [false, true]) forms.add(base64Core(raw, align, urlSafe));
  return [raw, ...[...forms].filter((f) => f.length >= 8).map((f) => Buffer.from(f, 'latin1'))];
}

export type SecretForm = 'raw' | 'base64';

/** Whether the bytes of `file` contain a needle (read in 1 MiB chunks with overlap); which form when they do. */
export function fileHoldsSecret(file: string, needles: readonly Buffer[]): SecretForm | null {
  const overlap = Math.max(...needles.map((n) => n.length)) - 1;
  const chunk = Buffer.alloc(1 << 20);
  const fd = fs.openSync(file, 'r');
  try {
    let carry = Buffer.alloc(0);
    for (;;) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) return null;
      const window = carry.length === 0 ? chunk.subarray(0, n) : Buffer.concat([carry, chunk.subarray(0, n)]);
      for (let i = 0; i < needles.length; i++) if (window.includes(needles[i]!)) return i === 0 ? 'raw' : 'base64';
      carry = Buffer.from(window.subarray(Math.max(0, window.length - overlap)));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether `text` contains a needle. */
export function textHoldsSecret(text: string, needles: readonly Buffer[]): SecretForm | null {
  const b = Buffer.from(text, 'utf8');
  for (let i = 0; i < needles.length; i++) if (b.includes(needles[i]!)) return i === 0 ? 'raw' : 'base64';
  return null;
}
