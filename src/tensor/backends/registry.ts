/**
 * The one list of backends and the choice between them: `auto` (native when the addon loads, else
 * js with one warning line), `native`, or `js`; from setBackend() (the CLI's --backend) or the
 * MOE_TUNE_BACKEND environment variable. float64 tensors always run on js (the native kernels are
 * float32 only).
 */
import type { Backend } from '../backend.js';
import { jsBackend } from './js/index.js';
import { loadNativeBackend } from './native/index.js';
import { profiledBackend, profilingRequested } from './profiler.js';

export type BackendChoice = 'auto' | 'native' | 'js';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'native', 'js'];

let active: Backend | null = null;
let nativeResult: ReturnType<typeof loadNativeBackend> | null = null;
let warned = false;

function native(): ReturnType<typeof loadNativeBackend> {
  nativeResult ??= loadNativeBackend();
  return nativeResult;
}

function parseChoice(value: string, source: string): BackendChoice {
  if ((BACKEND_CHOICES as readonly string[]).includes(value)) return value as BackendChoice;
  throw new Error(`${source}: unknown backend '${value}' (expected one of ${BACKEND_CHOICES.join(', ')})`);
}

/** Resolves a choice to a backend; `native` fails loudly when the addon cannot load. */
export function resolveBackend(choice: BackendChoice): Backend {
  if (choice === 'js') return jsBackend;
  const n = native();
  if ('backend' in n) return n.backend;
  if (choice === 'native') {
    throw new Error(`native backend unavailable: ${n.error} (install a C++ compiler and run \`npm rebuild moe-tune\`, or use --backend js)`);
  }
  if (!warned) {
    warned = true;
    process.stderr.write(`moe-tune: warning: native backend unavailable (${n.error}); using the slow js backend. Install a C++ compiler (g++/clang, make, python3) and run \`npm rebuild moe-tune\` to fix.\n`);
  }
  return jsBackend;
}

/** Selects the backend for all later ops. */
export function setBackend(choice: BackendChoice | string): Backend {
  active = maybeProfiled(resolveBackend(parseChoice(choice, '--backend')));
  return active;
}

function maybeProfiled(b: Backend): Backend {
  return profilingRequested() ? profiledBackend(b) : b;
}

/** The active backend (chosen from MOE_TUNE_BACKEND, default auto, on first use). */
export function getBackend(): Backend {
  if (active === null) {
    const env = process.env['MOE_TUNE_BACKEND'];
    active = maybeProfiled(resolveBackend(env ? parseChoice(env, 'MOE_TUNE_BACKEND') : 'auto'));
  }
  return active;
}

/** Whether the native addon loads (without selecting it). */
export function nativeAvailable(): boolean {
  return 'backend' in native();
}

/** The kernels for an op on these tensors: js for float64 data, else the active backend. */
export function kernelsFor(...tensors: readonly ({ dtype: string } | null | undefined)[]): Backend {
  for (const t of tensors) if (t && t.dtype === 'float64') return jsBackend;
  return getBackend();
}
