#!/usr/bin/env node
// Builds the native addon once per x86 ISA level, so that every compile-time kernel path is tested on
// any machine that can run it (test/native-isa-variants.test.ts, docs/engine.md "ISA variants").
//
// Why build variants rather than dispatch at run time: the kernels pick their path with
// `#if defined(__AVX512F__)` / AVX2 + FMA / AVX / portable at compile time (simd.h's vector width
// follows the target, and every elementwise, softmax, attention, GEMM, skinny, gemv and NF4 kernel is
// written on it). Run-time dispatch would mean compiling each of those files once per ISA under
// target attributes and threading an ISA choice through every call; building the unchanged sources
// with another -march covers every path with no kernel change, and costs one compile per variant
// (~30 s on 2 cores), cached by a hash of the sources and flags. The build the machine uses stays the
// `npm install` one (-march=native); these builds exist for the tests.
//
//   node scripts/build-isa-variants.mjs [--list] [--json] [--jobs N] [isa ...]
//
// Without ISA names: every variant this CPU can execute whose ISA differs from the default build's
// (build/Release, which the default test run covers). --list only reports (nothing is built).
// --json prints one JSON array: {isa, march, runnable, missing, sameAsDefault, path, built, cached,
// seconds, error, log}. Output: build/isa-<isa>/moe_tune_native.node (+ stamp.json, build.log).
// Sources, defines and compiler flags are read from binding.gyp (one list); only -march differs.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const self = fileURLToPath(import.meta.url);

/**
 * The variants, best first. cpu: the /proc/cpuinfo flags the -march level lets the compiler use
 * anywhere (a CPU lacking one may fault on any instruction, so the variant is skipped there).
 */
export const VARIANTS = [
  {
    isa: 'avx512',
    march: ['-march=x86-64-v4', '-mprefer-vector-width=512'],
    cpu: ['avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl', 'avx2', 'fma', 'bmi1', 'bmi2', 'f16c', 'movbe', 'abm'],
  },
  { isa: 'avx2', march: ['-march=x86-64-v3'], cpu: ['avx2', 'fma', 'bmi1', 'bmi2', 'f16c', 'movbe', 'abm'] },
  // AVX without AVX2 / FMA (Sandy / Ivy Bridge): 8-lane vectors with the portable micro-kernel,
  // a combination no other variant compiles.
  { isa: 'avx', march: ['-march=x86-64-v2', '-mavx'], cpu: ['avx', 'sse4_2', 'popcnt', 'ssse3'] },
  { isa: 'portable', march: ['-march=x86-64'], cpu: [] },
];

function cpuFlags() {
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const line = text.split('\n').find((l) => /^flags\s*:/.test(l));
    return line ? new Set(line.replace(/^flags\s*:\s*/, '').split(/\s+/)) : null;
  } catch {
    return null;
  }
}

/** The ISA of the default build (build/Release), or null when it is missing or does not load. */
function defaultBuildIsa() {
  const path = join(root, 'build', 'Release', 'moe_tune_native.node');
  if (!existsSync(path)) return null;
  try {
    const addon = createRequire(import.meta.url)(path);
    return typeof addon.buildIsa === 'function' ? addon.buildIsa() : null;
  } catch {
    return null;
  }
}

/** binding.gyp's target (gyp files are JSON with #-comments). */
function gypTarget() {
  const text = readFileSync(join(root, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, '');
  const t = JSON.parse(text).targets[0];
  return {
    sources: t.sources,
    defines: t.defines ?? [],
    cflags: t.cflags ?? [],
    cflagsCc: t.cflags_cc ?? [],
    ldflags: t.ldflags ?? [],
  };
}

/** The directory holding node_api.h: npm's nodedir, the running Node's prefix, node-gyp's cache. */
function nodeIncludeDir() {
  const candidates = [
    process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
    join(dirname(process.execPath), '..', 'include', 'node'),
    join(homedir(), '.cache', 'node-gyp', process.versions.node, 'include', 'node'),
  ];
  return candidates.find((d) => d && existsSync(join(d, 'node_api.h'))) ?? null;
}

function compilerVersion(cxx) {
  const r = spawnSync(cxx, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n')[0] : null;
}

/** Hash of everything a variant's binary depends on. */
function cacheKey(variant, cxx, cxxVersion, flags) {
  const h = createHash('sha256');
  h.update(JSON.stringify({ isa: variant.isa, cxx, cxxVersion, flags, node: process.versions.node }));
  h.update(readFileSync(self));
  h.update(readFileSync(join(root, 'binding.gyp')));
  const src = join(root, 'native', 'src');
  for (const f of readdirSync(src).sort()) {
    h.update(f);
    h.update(readFileSync(join(src, f)));
  }
  return h.digest('hex');
}

/** Runs the commands with at most `jobs` at once; resolves to their results in order. */
function runPool(commands, jobs) {
  return new Promise((resolve) => {
    const results = new Array(commands.length);
    let next = 0;
    let running = 0;
    let done = 0;
    if (commands.length === 0) resolve(results);
    const start = () => {
      while (running < jobs && next < commands.length) {
        const i = next++;
        const { cmd, args } = commands[i];
        running++;
        const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = `$ ${cmd} ${args.join(' ')}\n`;
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (out += d));
        const finish = (status) => {
          results[i] = { status, out };
          running--;
          done++;
          if (done === commands.length) resolve(results);
          else start();
        };
        child.on('error', (e) => finish((out += `${e.message}\n`, -1)));
        child.on('close', (code) => finish(code ?? -1));
      }
    };
    start();
  });
}

function writeAtomic(path, text) {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** The most telling line of a failed compile, shortened. */
function errorLine(out) {
  const line = out.split('\n').find((l) => /error:|fatal|not found|No such file/i.test(l)) ?? out.trim().split('\n').pop() ?? '';
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

async function buildVariants(plans, jobs, cxx) {
  const gyp = gypTarget();
  const inc = nodeIncludeDir();
  const cxxVersion = compilerVersion(cxx);
  const common = [
    '-fPIC', '-Wall', '-Wextra', '-Wno-unused-parameter', ...gyp.cflags, ...gyp.cflagsCc,
    ...gyp.defines.map((d) => `-D${d}`), '-DBUILDING_NODE_EXTENSION', '-DNODE_GYP_MODULE_NAME=moe_tune_native',
  ];
  const work = [];
  for (const p of plans) {
    const started = Date.now();
    if (!inc) {
      p.error = 'Node headers (node_api.h) not found; run `npm ci` first (node-gyp fetches them)';
      continue;
    }
    if (!cxxVersion) {
      p.error = `cannot run the C++ compiler '${cxx}' (set CXX)`;
      continue;
    }
    const flags = [...common, ...p.variant.march, `-I${inc}`];
    const key = cacheKey(p.variant, cxx, cxxVersion, flags);
    const dir = join(root, 'build', `isa-${p.variant.isa}`);
    const stampPath = join(dir, 'stamp.json');
    try {
      if (existsSync(p.path) && JSON.parse(readFileSync(stampPath, 'utf8')).key === key) {
        Object.assign(p, { built: true, cached: true, seconds: 0 });
        continue;
      }
    } catch {
      // no or unreadable stamp: rebuild
    }
    // objects in a per-process directory: two concurrent builds waste work but never mix files
    const obj = join(dir, `obj-${process.pid}`);
    mkdirSync(obj, { recursive: true });
    const objects = gyp.sources.map((s) => join(obj, s.replace(/[/\\]/g, '_').replace(/\.cc$/, '.o')));
    const compiles = gyp.sources.map((s, i) => ({ cmd: cxx, args: [...flags, '-c', join(root, s), '-o', objects[i]] }));
    work.push({ p, dir, obj, objects, compiles, key, flags, started });
  }
  // every variant's compiles share one pool (the cores stay busy across variants)
  const all = work.flatMap((w) => w.compiles);
  const results = await runPool(all, jobs);
  let at = 0;
  const links = [];
  for (const w of work) {
    const rs = results.slice(at, at + w.compiles.length);
    at += w.compiles.length;
    w.log = rs.map((r) => r.out).join('');
    const failed = rs.find((r) => r.status !== 0);
    if (failed) {
      w.p.error = `compile failed: ${errorLine(failed.out)}`;
      continue;
    }
    w.tmp = `${w.p.path}.tmp-${process.pid}`;
    links.push(w);
  }
  const linkResults = await runPool(links.map((w) => ({ cmd: cxx, args: ['-shared', '-pthread', ...gyp.ldflags, '-o', w.tmp, ...w.objects] })), jobs);
  links.forEach((w, i) => {
    const r = linkResults[i];
    w.log += r.out;
    if (r.status !== 0) {
      w.p.error = `link failed: ${errorLine(r.out)}`;
      return;
    }
    renameSync(w.tmp, w.p.path);
    const seconds = (Date.now() - w.started) / 1000;
    writeAtomic(join(w.dir, 'stamp.json'), JSON.stringify({ key: w.key, isa: w.p.variant.isa, flags: w.flags, seconds }, null, 1));
    Object.assign(w.p, { built: true, cached: false, seconds });
  });
  for (const w of work) {
    rmSync(w.obj, { recursive: true, force: true });
    if (w.tmp) rmSync(w.tmp, { force: true });
    if (w.log !== undefined) {
      writeAtomic(join(w.dir, 'build.log'), w.log);
      w.p.log = relative(root, join(w.dir, 'build.log'));
    }
  }
}

async function main() {
  const argv = process.argv.slice(2);
  const json = argv.includes('--json');
  const listOnly = argv.includes('--list');
  const ji = argv.indexOf('--jobs');
  const jobs = ji >= 0 ? Number(argv[ji + 1]) : availableParallelism();
  if (!(Number.isInteger(jobs) && jobs >= 1)) throw new Error(`--jobs: expected a positive integer, got '${argv[ji + 1]}'`);
  const names = argv.filter((a, i) => !a.startsWith('--') && !(ji >= 0 && i === ji + 1));
  for (const n of names) {
    if (!VARIANTS.some((v) => v.isa === n)) throw new Error(`unknown ISA '${n}' (expected one of ${VARIANTS.map((v) => v.isa).join(', ')})`);
  }
  const x86 = process.arch === 'x64';
  const flags = x86 ? cpuFlags() : null;
  const defaultIsa = defaultBuildIsa();
  const plans = VARIANTS.filter((v) => names.length === 0 || names.includes(v.isa)).map((v) => {
    const missing = !x86 ? ['x86-64'] : flags ? v.cpu.filter((f) => !flags.has(f)) : v.cpu.length ? ['/proc/cpuinfo'] : [];
    return {
      variant: v,
      isa: v.isa,
      march: v.march.join(' '),
      runnable: missing.length === 0,
      missing,
      sameAsDefault: defaultIsa === v.isa,
      path: join(root, 'build', `isa-${v.isa}`, 'moe_tune_native.node'),
      built: false,
      cached: false,
      seconds: 0,
      error: null,
      log: null,
    };
  });
  const todo = plans.filter((p) => p.runnable && (names.length > 0 || !p.sameAsDefault));
  if (!listOnly && todo.length > 0) {
    for (const p of todo) mkdirSync(dirname(p.path), { recursive: true });
    await buildVariants(todo, jobs, process.env.CXX || 'g++');
  }
  const report = plans.map(({ variant: _v, ...rest }) => rest);
  if (json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    for (const p of report) {
      const what = !p.runnable ? `skipped (this CPU lacks ${p.missing.join(', ')})`
        : p.error ? `FAILED: ${p.error} (log: ${p.log})`
        : p.built ? `${p.cached ? 'up to date' : `built in ${p.seconds.toFixed(1)} s`}: ${relative(process.cwd(), p.path)}`
        : p.sameAsDefault ? 'the default build (build/Release)' : 'not built';
      console.log(`moe-tune isa ${p.isa} (${p.march}): ${what}`);
    }
  }
  process.exitCode = report.some((p) => p.error) ? 1 : 0;
}

main().catch((e) => {
  console.error(`build-isa-variants: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 2;
});
