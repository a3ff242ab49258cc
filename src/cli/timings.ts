/**
 * The timings the docs quote, written once: README.md, docs/cli.md and `moe-tune demo --help` each
 * contain these exact phrases (test/docs-timings.test.ts checks it), so they cannot drift apart again.
 * Measured on this project's 2-core machine (native backend), as CPU time because wall time there
 * depends on what else shares the cores: `demo` used 99.4 s of CPU (97.7 s user + 1.7 s system;
 * 9 min 56 s wall at a load average of 22, i.e. with about ten other processes on the two cores);
 * building the addon (scripts/build-addon.mjs, g++ -O3 of native/src) used 18.7 s of CPU (2 min 44 s
 * wall at the same load). On two idle cores the wall time is at most the CPU time.
 */
export const DEMO_TIMING = 'about 100 s of CPU time (at most that on 2 idle cores, longer when the cores are shared)';
export const ADDON_BUILD_TIMING = 'about 20 s of compiler CPU time';
export const DEMO_QUICK_TIMING = 'well under a minute';
