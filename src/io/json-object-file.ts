/** Reading a JSON file that must hold one object (config.json, index files, job files). */
import * as fs from 'node:fs';
import { errorText } from './file-format-error.js';
import { requireRegularFile } from './regular-file.js';

/** Reads a JSON file that must hold an object; errors name the file. */
export function readJsonObject(file: string): Record<string, unknown> {
  let text: string;
  requireRegularFile(file, 'file');
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`${file}: ${code === 'ENOENT' ? 'file not found' : `cannot read: ${errorText(err)}`}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: invalid JSON: ${errorText(err)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${file}: expected a JSON object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  return value as Record<string, unknown>;
}
