#!/usr/bin/env node
// The package's `install` script: compiles the native kernels (binding.gyp -> native/src) into
// build/Release/moe_tune_native.node with node-gyp, offline, against the running Node's headers.
// A failed build is not an install failure: it prints one warning line (the js backend will be
// used; how to fix it) and exits 0, so `npm install` / `npm ci` still succeed. The full compiler
// output goes to build/build-addon.log.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const logPath = join(root, 'build', 'build-addon.log');
const addonPath = join(root, 'build', 'Release', 'moe_tune_native.node');

/** How to run node-gyp: npm's bundled copy (npm sets npm_config_node_gyp), else the one on PATH. */
function nodeGypCommand() {
  const candidates = [
    process.env.npm_config_node_gyp,
    // npm's bundled node-gyp next to this Node (when the script is run by hand)
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  for (const c of candidates) {
    if (c && existsSync(c)) return { cmd: process.execPath, pre: [c] };
  }
  return { cmd: 'node-gyp', pre: [] };
}

/** Node's headers without a download: npm's nodedir setting, else the running Node's prefix. */
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = join(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'common.gypi')) ? [`--nodedir=${prefix}`] : [];
}

function writeLog(text) {
  try {
    mkdirSync(dirname(logPath), { recursive: true });
    const tmp = `${logPath}.tmp-${process.pid}`;
    writeFileSync(tmp, text);
    renameSync(tmp, logPath);
  } catch {
    // the log is a convenience; never fail the install over it
  }
}

/** The most telling line of a failed build (a compiler or gyp error), shortened. */
function reason(output, fallback) {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  const hit = lines.find((l) => /error:|not found|No such file|ERR! (stack )?Error/i.test(l) && !/ERR! (cwd|node -v|node-gyp -v|System|command)/.test(l));
  const line = (hit ?? fallback).replace(/^gyp ERR! (stack )?/, '');
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}

const { cmd, pre } = nodeGypCommand();
const args = [...pre, 'rebuild', '--jobs=max', ...nodedirArgs()];
const started = Date.now();
const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', env: process.env, maxBuffer: 64 * 1024 * 1024 });
const output = `$ ${cmd} ${args.join(' ')}\n${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `\n${r.error.message}\n` : ''}`;
writeLog(output);

const rel = relative(process.cwd(), addonPath) || addonPath;
if (r.status === 0 && !r.error && existsSync(addonPath)) {
  console.log(`moe-tune: native addon built in ${((Date.now() - started) / 1000).toFixed(1)} s (${rel})`);
} else {
  const why = r.error ? `cannot run ${cmd}: ${r.error.message}` : reason(output, `node-gyp exited with status ${r.status}`);
  console.warn(`moe-tune: warning: the native addon did not build (${why}); the slower js backend will be used. ` +
    `To fix: install a C++ compiler (g++ or clang, make, python3) and run \`npm rebuild moe-tune\` (log: ${relative(process.cwd(), logPath) || logPath}).`);
}
process.exit(0);
