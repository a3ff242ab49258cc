/**
 * What commands print: one JSON object for --json, aligned "key  value" lines for people, and a
 * progress line on stderr (only when stderr is a terminal, so logs and pipes stay clean).
 */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Prints [key, value] rows with the keys padded to one column. */
export function printFields(rows: readonly (readonly [string, string])[]): void {
  const w = Math.max(0, ...rows.map(([k]) => k.length));
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(w)}  ${v}\n`);
}

/** A plain-text table (right-aligned columns after the first). */
export function printTable(headers: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  process.stdout.write(`${line(headers)}\n`);
  for (const r of rows) process.stdout.write(`${line(r)}\n`);
}

/** Writes a line to stderr (status messages that must not mix with --json output). */
export function note(message: string): void {
  process.stderr.write(`${message}\n`);
}

export interface Progress {
  update(done: number, total: number): void;
  done(): void;
}

export function progress(label: string): Progress {
  const tty = process.stderr.isTTY === true;
  let last = 0;
  return {
    update(done, total) {
      if (!tty) return;
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      process.stderr.write(`\r${label} ${done}/${total}`);
    },
    done() {
      if (tty) process.stderr.write('\r\x1b[K');
    },
  };
}

/** 1234567 -> "1,234,567". */
export function thousands(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
