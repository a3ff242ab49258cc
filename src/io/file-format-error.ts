/**
 * The error every reader / writer in src/io throws for bad input: one line naming the file (and the tensor or
 * field when there is one) and what was wrong. The CLI prints `message` as it is.
 */
export class FileFormatError extends Error {
  readonly file: string;
  readonly tensor: string | undefined;

  constructor(file: string, detail: string, tensor?: string) {
    super(oneLine(`${file}: ${tensor === undefined ? '' : `tensor ${JSON.stringify(tensor)}: `}${detail}`));
    this.name = 'FileFormatError';
    this.file = file;
    this.tensor = tensor;
  }
}

/** Collapses line breaks so a message stays one line whatever text it quotes. */
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ');
}

/** The message of an unknown thrown value, on one line. */
export function errorText(err: unknown): string {
  return oneLine(err instanceof Error ? err.message : String(err));
}
