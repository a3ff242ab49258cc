/** Parsers for option values; a bad value is commander's one-line "option ... is invalid" error. */
import { InvalidArgumentError } from 'commander';

export function intArg(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}.`);
    return n;
  };
}

export function numberArg(min: number, max = Infinity): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a number in [${min}, ${max === Infinity ? 'inf' : max}].`);
    }
    return n;
  };
}

/** Collects a repeatable option into an array. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function choiceArg<T extends string>(choices: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(choices as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}.`);
    return value as T;
  };
}

/** `--columns ours=theirs,...` as a map (our field -> the file's column). */
export function columnsArg(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of value.split(',')) {
    const m = /^\s*([A-Za-z_][\w]*)\s*=\s*(\S(?:.*\S)?)\s*$/.exec(part);
    if (!m) throw new InvalidArgumentError(`expected ours=theirs,... (e.g. prompt=question,completion=answer), got ${JSON.stringify(part)}.`);
    out[m[1]!] = m[2]!;
  }
  return out;
}
