#!/usr/bin/env node
// Build step after `tsc`: bundles the CLI (every command under dist/commands, the engine it calls and
// @oclif/core) into one CommonJS file, dist/tspod.cjs, and writes oclif.manifest.json for it.
//
// Why: a plain oclif 4 command costs ≈ 205–236 ms here, ≈ 100 ms of it resolving and compiling
// @oclif/core's ~150 small modules. One file that bin/tspod.js compiles with a V8 code cache brings
// `tspod --version` to ≈ 35–45 ms above bare Node (../shared/STACK-NOTES.md, BENCHMARKS.md).
//
// Heavy or native modules stay out of the bundle and out of start-up: undici is imported lazily by
// the registry client (from dist/undici.cjs, bundled below, when run through bin/tspod.js), koffi is
// required lazily by src/sys. The command map is generated from the files tsc emitted, so a new command
// needs no edit here.
import { build } from 'esbuild';
import { readdirSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = fileURLToPath(new URL('..', import.meta.url));
const commandsDir = join(root, 'dist', 'commands');
const outfile = join(root, 'dist', 'tspod.cjs');

/** dist/commands/a/b.js → "a:b"; dist/commands/a/index.js → "a" (oclif's pattern-strategy ids). */
function commandFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...commandFiles(p));
    else if (e.name.endsWith('.js') && !e.name.endsWith('.d.js')) out.push(p);
  }
  return out.sort();
}
const commands = commandFiles(commandsDir).map((file) => {
  const parts = relative(commandsDir, file).slice(0, -3).split(sep);
  if (parts.at(-1) === 'index') parts.pop();
  return { id: parts.join(':'), file };
});
if (commands.length === 0) throw new Error(`bundle-cli: no commands under ${commandsDir} (run tsc first)`);

const entry = [
  "export { execute, settings } from '@oclif/core';",
  ...commands.map((c, i) => `import C${i} from ${JSON.stringify('./' + relative(root, c.file).split(sep).join('/'))};`),
  `export const COMMANDS = { ${commands.map((c, i) => `${JSON.stringify(c.id)}: C${i}`).join(', ')} };`,
].join('\n');

const tmp = `${outfile}.${process.pid}.tmp`;
const result = await build({
  stdin: { contents: entry, resolveDir: root, sourcefile: 'tspod-cli-entry.js', loader: 'js' },
  // esbuild names each module by its path from the working directory: the package root, so that a
  // rebuild from elsewhere (bin/tspod.js rebuilds a stale bundle wherever tspod runs) is the same file.
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outfile: tmp,
  logLevel: 'warning',
  // Loaded lazily at run time (or never, for oclif's optional TypeScript support).
  external: ['undici', 'koffi', 'typescript', 'ts-node', 'tsx'],
  // The bundle is CommonJS: give ESM code a real import.meta.url (src/sys and the launcher lookup use it).
  define: { 'import.meta.url': '__tspod_import_meta_url' },
  banner: {
    js: [
      "var __tspod_import_meta_url = require('node:url').pathToFileURL(__filename).href;",
      // bin/tspod.js compiles the bundle as a vm.Script (for the code cache), where a dynamic import()
      // has no loader; oclif uses import() to load ESM plugins and hooks. Route it through the loader.
      "var __tspod_import = globalThis[Symbol.for('tspod.import')] || ((s) => import(s));",
      // Built-in modules that most commands never touch are loaded on first use (see lazyBuiltins).
      "var __tspod_lazy = (id) => { let m; const get = () => (m ??= require(id)); return new Proxy({}, { get: (_, k) => get()[k], has: (_, k) => k in get(), ownKeys: () => Reflect.ownKeys(get()), getOwnPropertyDescriptor: (_, k) => { const d = Reflect.getOwnPropertyDescriptor(get(), k); if (d) d.configurable = true; return d; } }); };",
    ].join('\n'),
  },
  legalComments: 'none',
  write: false,
});
if (result.errors.length) process.exit(1);
const [banner, code] = splitBanner(result.outputFiles[0].text);
writeFileSync(tmp, asciiOnly(banner + lazyBuiltins(patchOclif(code)).replace(/(?<![\w$.'"`])import\(/g, '__tspod_import(')));
renameSync(tmp, outfile);

// undici in a file of its own, which bin/tspod.js compiles with a code cache like the CLI bundle when the
// registry client first needs it (src/registry/transport.ts): ≈ 85–105 ms to import from node_modules
// (≈ 100 modules, each resolved and compiled), ≈ 30 ms for all of undici from one file with its cache, and
// ≈ 15 ms for the part the client uses: the dispatchers it creates and their request API, without fetch,
// WebSocket, cookies, the cache and the mocks (half the size). What it exports is the type loadUndici
// returns, so the compiler names anything else the client starts to use. Only the commands that talk to a
// registry load it; everything else never reads it.
const undiciOut = join(root, 'dist', 'undici.cjs');
const undiciTmp = `${undiciOut}.${process.pid}.tmp`;
const undiciDir = dirname(createRequire(join(root, 'package.json')).resolve('undici'));
const undiciLib = (p) => JSON.stringify(join(undiciDir, 'lib', p));
const undici = await build({
  stdin: {
    contents: [
      "'use strict';",
      `const Dispatcher = require(${undiciLib('dispatcher/dispatcher.js')});`,
      `Object.assign(Dispatcher.prototype, require(${undiciLib('api/index.js')})); // request(), stream(), … as undici's index.js adds them`,
      `module.exports = { Agent: require(${undiciLib('dispatcher/agent.js')}), EnvHttpProxyAgent: require(${undiciLib('dispatcher/env-http-proxy-agent.js')}) };`,
    ].join('\n'),
    resolveDir: undiciDir,
    sourcefile: 'tspod-undici-entry.js',
    loader: 'js',
  },
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  logLevel: 'warning',
  legalComments: 'none',
  write: false,
});
if (undici.errors.length) process.exit(1);
writeFileSync(undiciTmp, asciiOnly(undici.outputFiles[0].text));
renameSync(undiciTmp, undiciOut);

/**
 * oclif sorts the command list with String#localeCompare on every start, which initialises ICU's collator
 * (≈ 9 ms here). Command ids are ASCII, so code-point order gives the same list.
 */
function patchOclif(code) {
  const sortById = '.sort((a, b) => a.id.localeCompare(b.id));';
  if (!code.includes(sortById)) {
    process.stderr.write('bundle-cli: note: oclif\'s command sort not found (oclif changed?); start-up pays ICU init\n');
    return code;
  }
  code = code.replace(sortById, '.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));');
  // oclif measures both terminals when its screen module loads, which creates process.stdout and
  // process.stderr (≈ 4 ms) even for a command that never writes to them (run passes its fds through):
  // measure on first use instead.
  const widths = [
    'exports2.stdtermwidth = columns || termwidth(process.stdout);',
    'exports2.errtermwidth = columns || termwidth(process.stderr);',
  ];
  if (widths.every((w) => code.includes(w))) {
    code = code.replace(widths[0], 'Object.defineProperty(exports2, "stdtermwidth", { enumerable: true, get: () => columns || termwidth(process.stdout) });');
    code = code.replace(widths[1], 'Object.defineProperty(exports2, "errtermwidth", { enumerable: true, get: () => columns || termwidth(process.stderr) });');
  }
  return code;
}

/**
 * The bundle evaluates every module's top-level `require` at start, so every command loaded tls (for
 * the registry's CA list, 6 modules) and zlib (pull, save/load, commit): 8 built-in modules compiled
 * on every start, `run` included. They become proxies that require the module on the first property
 * access. (perf_hooks too, for oclif's opt-in timing; Node still loads it for something that reads
 * the global `performance`, so that one gains nothing yet.) Only plain
 * `var x = require("node:…")` bindings are rewritten (a `__toESM(…)` wrapper would copy every
 * property at once and gain nothing).
 */
function lazyBuiltins(code) {
  let n = 0;
  const out = code.replace(/(var [\w$]+ = )require\("node:(tls|zlib|perf_hooks)"\);/g, (_, lhs, id) => {
    n++;
    return `${lhs}__tspod_lazy("node:${id}");`;
  });
  if (n === 0) process.stderr.write('bundle-cli: note: no tls/zlib/perf_hooks require found to make lazy\n');
  return out;
}

/**
 * Keeps the bundle pure ASCII, so bin/tspod.js reads it as a one-byte string: a source with a single
 * non-ASCII character (a "→" in a comment, a raw control character in a regex) decodes as UTF-8 into
 * a two-byte string, ≈ 5–8 ms for 1.3 MB instead of ≈ 0.3 ms, on every start. esbuild escapes strings
 * but keeps comments and regex literals as written; a \uXXXX escape means the same character in a
 * string, a regex or an identifier, and is inert in a comment.
 */
function asciiOnly(code) {
  // (A String.raw template would see the escape itself: none in the bundle has non-ASCII text.)
  return code.replace(/[^\x00-\x7f]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

function splitBanner(text) {
  const i = text.indexOf('\n', text.indexOf('__tspod_import =')) + 1;
  return [text.slice(0, i), text.slice(i)];
}

// The manifest lets oclif answer --help, topics and command lookup without building the command list
// on every start. It is derived from the bundle, so it is rebuilt with it.
const require = createRequire(outfile);
const { Plugin } = require(outfile).__oclif ?? require('@oclif/core');
const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true, isRoot: true });
await plugin.load();
const manifestPath = join(root, 'oclif.manifest.json');
writeFileSync(`${manifestPath}.tmp`, JSON.stringify(plugin.manifest, null, 2) + '\n');
renameSync(`${manifestPath}.tmp`, manifestPath);
const kb = Math.round(statSync(outfile).size / 1024);
process.stdout.write(`bundle-cli: ${commands.length} commands → ${relative(root, outfile)} (${kb} KiB), oclif.manifest.json\n`);
