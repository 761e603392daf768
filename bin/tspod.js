#!/usr/bin/env -S node --
// ("--": Node 20 looks for its own --env-file anywhere in argv, the command's arguments included, and
// exits 9 on `tspod run --env-file MISSING`; after "--" it reads none of them.)
// Entry point: the fast path of every command (BENCHMARKS.md). `npm run build` bundles the CLI and
// @oclif/core into dist/tspod.cjs (scripts/bundle-cli.mjs); this file compiles that one file with a
// V8 code cache kept in the user's cache folder, so a start costs one read and no parse or compile.
// Keep it tiny and free of imports that are not already in Node's snapshot. It is CommonJS (bin/package.json
// says so): an ES module entry costs ≈ 3 ms more at every start, for Node's ESM loader.
'use strict';
const { readFileSync, writeFileSync, renameSync, statSync, mkdirSync, readdirSync, rmSync } = require('node:fs');
const { isAscii } = require('node:buffer');
const { createRequire, Module } = require('node:module');
const { dirname, join } = require('node:path');
const vm = require('node:vm');

process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1'; // skips a semver check of the Node version (≈ 10 ms)
const root = dirname(__dirname);
const bundle = join(root, 'dist', 'tspod.cjs');

let st;
try {
  st = statSync(bundle);
  // A developer who re-ran only `tsc` must not run a stale bundle: rebuild it (esbuild, ≈ 0.5 s). tsc
  // rewrites every output, so one file tells (a file, not a folder: an unpacked package's folders are new).
  if (statSync(join(root, 'dist', 'src', 'index.js')).mtimeMs > st.mtimeMs) {
    const { execFileSync } = require('node:child_process');
    try {
      execFileSync(process.execPath, [join(root, 'scripts', 'bundle-cli.mjs')], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      // A build running at this moment (tsc half-way through dist/) can make the rebundle fail: run the
      // bundle there is rather than fail the command; the next start tries again.
      process.stderr.write(`tspod: warning: could not rebuild the stale CLI bundle (${String(err.stderr || err.message).split('\n').find((l) => /error/i.test(l))?.trim() ?? 'exit ' + err.status}); running the existing one\n`);
    }
    st = statSync(bundle);
  }
} catch (err) {
  process.stderr.write(`tspod: the CLI is not built (${err.code ?? err.message}); run \`npm run build\` in ${root}\n`);
  process.exit(125);
}

globalThis[Symbol.for('tspod.import')] = (specifier) => import(specifier);
// The registry client asks for undici through this (src/registry/transport.ts): dist/undici.cjs with its
// own code cache, ≈ 30 ms instead of ≈ 85–105 ms for undici's ~100 modules from node_modules. undefined
// (no such file: an older build) makes the client import undici itself.
let undici;
globalThis[Symbol.for('tspod.undici')] = () => {
  if (undici === undefined) {
    const file = join(root, 'dist', 'undici.cjs');
    try {
      undici = load(file, statSync(file), 'undici', '');
    } catch {
      undici = null;
    }
  }
  return undici ?? undefined;
};
const cli = load(bundle, st, 'cli', process.argv[2]);
cli.settings.enableAutoTranspile = false; // never look for ts-node/typescript, whatever NODE_ENV says
checkCommand(process.argv, Object.keys(cli.COMMANDS ?? {}));
// oclif looks for the package.json that names the CLI from `dir` upwards: the package root (not this
// folder, whose package.json only sets the module type).
cli.execute({ dir: root });

/**
 * As docker: `tspod help [COMMAND…]` is `tspod [COMMAND…] --help`, and an unknown command (or
 * subcommand of a topic such as `network`) is one line and exit status 1, instead of oclif's
 * decorated error and status 2. Changes argv in place for help.
 */
function checkCommand(argv, ids) {
  if (ids.length === 0) return; // an older bundle without the command list: oclif decides
  if (argv[2] === 'help') {
    argv.splice(2, 1);
    argv.push('--help');
  }
  const words = [];
  for (const a of argv.slice(2)) {
    if (a.startsWith('-')) break;
    words.push(a);
    const id = words.join(':');
    if (ids.includes(id)) return; // a command: its own arguments follow
    if (!ids.some((c) => c.startsWith(id + ':'))) {
      process.stderr.write(`tspod: '${words.join(' ')}' is not a tspod command; see 'tspod --help'\n`);
      process.exit(1);
    }
  }
}

/**
 * Loads the bundle as the CommonJS module it is (registered in require.cache, so oclif's own
 * `require(target)` of the command file gets this instance), compiled with a code cache when one
 * is usable. The cache is written after the command ran, so it holds the functions that ran too.
 */
function load(file, st, kind, word) {
  // The bundle is pure ASCII (scripts/bundle-cli.mjs): decoded as latin1 it becomes a one-byte string
  // at once (≈ 0.3 ms); UTF-8 decoding costs ≈ 5–8 ms. A bundle that is not ASCII is read as UTF-8.
  const bytes = readFileSync(file);
  const source = bytes.toString(isAscii(bytes) ? 'latin1' : 'utf8');
  const cacheDir = codeCacheDir();
  // One cache per command: a cache holds the functions that ran when it was made, so `run` gets its
  // engine code precompiled too, not only what `--version` needed (≈ 6 ms on run).
  const stamp = `${kind}-${process.version}-${process.arch}-${st.size}-${Math.floor(st.mtimeMs)}`;
  const key = `${stamp}-${word && /^[a-z][a-z0-9-]{0,30}$/.test(word) ? word : '_'}.v8`;
  let cachedData;
  if (cacheDir) {
    try {
      cachedData = readFileSync(join(cacheDir, key));
    } catch {
      // none yet
    }
  }
  const script = new vm.Script(Module.wrap(source), {
    filename: file,
    cachedData,
  });
  if (cacheDir && (cachedData === undefined || script.cachedDataRejected)) {
    process.once('exit', () => saveCodeCache(script, cacheDir, key, stamp, kind));
  }
  const mod = new Module(file, undefined);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(dirname(file));
  Module._cache[file] = mod;
  const require = createRequire(file);
  script.runInThisContext()(mod.exports, require, mod, file, dirname(file));
  mod.loaded = true;
  return mod.exports;
}

/** $TSPOD_CODE_CACHE (a folder, or "0" to disable), else $XDG_CACHE_HOME/tspod, else ~/.cache/tspod. */
function codeCacheDir() {
  const env = process.env.TSPOD_CODE_CACHE;
  if (env === '0' || env === 'off') return undefined;
  if (env) return env;
  const base = process.env.XDG_CACHE_HOME || (process.env.HOME ? join(process.env.HOME, '.cache') : undefined);
  return base ? join(base, 'tspod') : undefined;
}

function saveCodeCache(script, dir, key, stamp, kind) {
  try {
    const data = script.createCachedData();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(dir)) {
      if (name.startsWith(`${kind}-`) && !name.startsWith(`${stamp}-`)) rmSync(join(dir, name), { force: true }); // an older build's
    }
    const tmp = join(dir, `.${key}.${process.pid}`);
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, join(dir, key));
  } catch {
    // A cache is an optimisation: a read-only or full home must not fail the command.
  }
}
