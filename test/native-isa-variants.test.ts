/**
 * Every compile-time kernel path of the native addon, tested on any x86-64 machine that can execute
 * it. The kernels choose AVX-512 / AVX2 + FMA / AVX / portable code with `#if` at compile time, and
 * `npm install` builds only the machine's own (-march=native), so the default test run covers one
 * ISA. scripts/build-isa-variants.mjs builds the same sources once per other ISA level
 * (build/isa-<isa>/, cached by a hash of sources and flags; .ci/run builds them in the background
 * while it installs the Python venvs); for each build this test runs the kernel test files below in
 * a child vitest with MOE_TUNE_NATIVE_ADDON naming that build, so every check they make (native vs
 * the js backend within their tolerances, bit for bit where they say so) runs against it, and
 * MOE_TUNE_EXPECT_ISA makes native-kernels.test.ts assert that the build reports the ISA asked for.
 *
 * Each variant must pass every test of every file with none skipped. A variant this CPU cannot
 * execute (AVX-512 on an AVX2-only EPYC) is skipped with one line naming the missing CPU flags; the
 * variant of the default build's ISA is the default run itself (checked here to report that ISA).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { nativeAddonPath, nativeBuildInfo } from '../src/tensor/backends/native/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SCRIPT = join(ROOT, 'scripts', 'build-isa-variants.mjs');
const VITEST = join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');

/** The files that check native kernels against the js backend (or bit for bit against native paths that are). */
const KERNEL_TESTS = [
  'test/native-kernels.test.ts',
  'test/native-nf4-gemm.test.ts',
  'test/native-weight-load.test.ts',
  'test/models-moe-grouped-qlora.test.ts',
  'test/engine-fused-vs-composed.test.ts',
];

/** One entry of `build-isa-variants.mjs --json`. */
interface Variant {
  isa: string;
  march: string;
  runnable: boolean;
  missing: string[];
  sameAsDefault: boolean;
  path: string;
  built: boolean;
  cached: boolean;
  seconds: number;
  error: string | null;
  log: string | null;
}

/** The part of vitest's JSON report read here. */
interface VitestReport {
  numPassedTests: number;
  testResults: {
    name: string;
    status: string;
    message?: string;
    assertionResults: { fullName: string; title: string; status: string; failureMessages: string[] }[];
  }[];
}

function variants(args: string[]): Variant[] {
  const r = spawnSync(process.execPath, [SCRIPT, '--json', ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0 && r.status !== 1) {
    throw new Error(`scripts/build-isa-variants.mjs exited with ${r.status}: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`);
  }
  return JSON.parse(r.stdout) as Variant[];
}

const firstLine = (s: string): string => s.trim().split('\n')[0] ?? '';

const built = existsSync(nativeAddonPath());
const overridden = Boolean(process.env['MOE_TUNE_NATIVE_ADDON']);
let listed: Variant[] = [];
if (!built) {
  console.warn(`native-isa-variants.test: SKIPPED, the addon is not built (${nativeAddonPath()} is missing)`);
} else if (process.arch !== 'x64') {
  console.warn(`native-isa-variants.test: SKIPPED, the ISA variants are x86-64 builds and this machine is ${process.arch}`);
} else if (overridden) {
  console.warn('native-isa-variants.test: SKIPPED, MOE_TUNE_NATIVE_ADDON already names one build');
} else {
  listed = variants(['--list']);
  for (const v of listed.filter((x) => !x.runnable)) {
    console.warn(`native-isa-variants.test: ISA ${v.isa} SKIPPED: this CPU cannot execute it (lacks ${v.missing.join(', ')})`);
  }
}

describe.skipIf(listed.length === 0)('the kernel tests pass against every ISA build this CPU can execute', () => {
  const builds = new Map<string, Variant>();

  beforeAll(() => {
    // one call builds (or finds up to date) every variant, sharing the cores across them
    const wanted = listed.filter((v) => v.runnable && !v.sameAsDefault).map((v) => v.isa);
    if (wanted.length > 0) for (const v of variants(wanted)) builds.set(v.isa, v);
  }, 900_000);

  for (const v of listed) {
    if (v.sameAsDefault) {
      it(`${v.isa} (${v.march}): is the default build, which the default run of the kernel tests covers`, () => {
        expect(nativeBuildInfo()?.isa).toBe(v.isa);
        console.log(`native-isa-variants.test: ISA ${v.isa}: the default build ${relative(ROOT, nativeAddonPath())} (${nativeBuildInfo()?.kernel})`);
      });
      continue;
    }
    it.skipIf(!v.runnable)(`${v.isa} (${v.march}): every kernel test passes against its build, none skipped`, () => {
      const b = builds.get(v.isa);
      expect(b, `${v.isa}: not built`).toBeDefined();
      if (b!.error) expect.fail(`${v.isa}: ${b!.error} (log: ${b!.log})`);
      // load it in a child first: a build this CPU cannot run fails here with its signal, not in vitest
      const probe = spawnSync(process.execPath, ['-e',
        'const a = require(process.argv[1]); console.log(JSON.stringify({ isa: a.buildIsa(), kernel: a.kernelName() }))', b!.path],
      { encoding: 'utf8' });
      expect(probe.status, `${b!.path} does not load: ${firstLine(probe.stderr)} (signal ${probe.signal})`).toBe(0);
      const { isa, kernel } = JSON.parse(probe.stdout) as { isa: string; kernel: string };
      expect(isa, `${b!.path} reports its ISA`).toBe(v.isa);

      mkdirSync(join(ROOT, '.tmp'), { recursive: true });
      const out = join(ROOT, '.tmp', `isa-${v.isa}-vitest-${process.pid}.json`);
      const env: NodeJS.ProcessEnv = { ...process.env, MOE_TUNE_NATIVE_ADDON: b!.path, MOE_TUNE_EXPECT_ISA: v.isa };
      for (const k of Object.keys(env)) if (k.startsWith('VITEST') || k === 'MOE_TUNE_BACKEND') delete env[k];
      const started = Date.now();
      const r = spawnSync(process.execPath, [VITEST, 'run', ...KERNEL_TESTS, '--reporter=json', `--outputFile=${out}`, '--maxWorkers=1'],
        { cwd: ROOT, env, encoding: 'utf8', maxBuffer: 1 << 26, timeout: 840_000 });
      const seconds = (Date.now() - started) / 1000;
      if (!existsSync(out)) expect.fail(`${v.isa}: the child vitest wrote no report (status ${r.status}, signal ${r.signal}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
      const report = JSON.parse(readFileSync(out, 'utf8')) as VitestReport;
      rmSync(out, { force: true });

      const problems: string[] = [];
      for (const f of report.testResults) {
        const file = relative(ROOT, f.name);
        if (f.assertionResults.length === 0) problems.push(`${file}: ${f.status}, no tests ran${f.message ? `: ${firstLine(f.message)}` : ''}`);
        for (const a of f.assertionResults) {
          if (a.status !== 'passed') problems.push(`${file} > ${a.fullName}: ${a.status}${a.failureMessages[0] ? `: ${firstLine(a.failureMessages[0])}` : ''}`);
        }
      }
      const ran = report.testResults.map((f) => relative(ROOT, f.name)).sort();
      expect(ran, `${v.isa}: the files run`).toEqual([...KERNEL_TESTS].sort());
      if (problems.length > 0) expect.fail(`${v.isa} (${b!.path}): ${problems.length} not passed: ${problems.slice(0, 5).join('; ')}`);
      expect(r.status, `${v.isa}: child vitest exit status`).toBe(0);
      const isaTest = report.testResults.flatMap((f) => f.assertionResults).filter((a) => a.title === 'reports the ISA it was built for');
      expect(isaTest.map((a) => a.status)).toEqual(['passed']);
      console.log(`native-isa-variants.test: ISA ${v.isa} (${v.march}, GEMM ${kernel}): ${report.numPassedTests} kernel tests passed ` +
        `in ${seconds.toFixed(1)} s against ${relative(ROOT, b!.path)} (${b!.cached ? 'cached build' : `built in ${b!.seconds.toFixed(1)} s`})`);
    }, 900_000);
  }
});
