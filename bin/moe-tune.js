#!/usr/bin/env node
// The moe-tune command: runs the compiled CLI in dist/ (built by `npm run build`, or by the
// `prepare` script on `npm ci` / `npm install`).
let cli;
try {
  cli = await import('../dist/cli/main.js');
} catch (err) {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist')) {
    process.stderr.write('moe-tune: dist/ is missing or incomplete: run `npm run build` in the moe-tune package first\n');
    process.exit(1);
  }
  throw err;
}
await cli.main();
