// The CLI's fast path (bin/tspod.js + dist/tspod.cjs, see scripts/bundle-cli.mjs): the bundled CLI keeps
// oclif's behaviour (help, topics, --version, flag errors, exit codes), writes its V8 code cache once, reuses
// it, survives a corrupt or unwritable cache, and never needs the per-command files oclif would otherwise load.
// No test here asserts a time: BENCHMARKS.md does the measuring.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../support/registry.js';
import { TSPOD_BIN } from '../support/tspod.js';

const root = repoRoot();
let dir: string;

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [TSPOD_BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, TSPOD_CODE_CACHE: join(dir, 'cache'), TSPOD_ROOT: join(dir, 'root'), TSPOD_RUNROOT: join(dir, 'run'), NODE_ENV: 'development', ...env },
    input: '',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  dir = mkdtempSync(join(root, '.tspod-test', 'fastpath-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bundled CLI', () => {
  it('is one CommonJS file named by package.json (explicit strategy) with a manifest of every command', () => {
    const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pjson.oclif.commands).toMatchObject({ strategy: 'explicit', target: './dist/tspod.cjs', identifier: 'COMMANDS' });
    const manifest = JSON.parse(readFileSync(join(root, 'oclif.manifest.json'), 'utf8'));
    const files = readdirSync(join(root, 'commands'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    const ids = files.map((f) => f.slice(0, -3).split('/').filter((p, i, a) => !(p === 'index' && i === a.length - 1)).join(':'));
    expect(Object.keys(manifest.commands).sort()).toEqual(ids.sort());
    // undici and koffi stay out of the bundle (loaded lazily, only by commands that need them).
    const bundle = readFileSync(join(root, 'dist', 'tspod.cjs'), 'utf8');
    expect(bundle).toMatch(/__tspod_import\("undici"\)/);
    expect(bundle).not.toMatch(/class Agent extends DispatcherBase/);
  });

  it('writes the code cache on the first start, reuses it, and prints the same on both', () => {
    const first = cli(['--version']);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^tspod\/\d+\.\d+\.\d+ linux-x64 node-v/);
    const caches = readdirSync(join(dir, 'cache'));
    expect(caches).toHaveLength(1);
    const cacheFile = join(dir, 'cache', caches[0]!);
    const written = statSync(cacheFile).mtimeMs;
    expect(statSync(cacheFile).size).toBeGreaterThan(10_000);
    const second = cli(['--version']);
    expect(second).toEqual(first);
    expect(statSync(cacheFile).mtimeMs).toBe(written); // accepted, so not rewritten
  });

  it('loads undici from its own ASCII bundle with its own code cache, only when a command talks to a registry', () => {
    const undici = readFileSync(join(root, 'dist', 'undici.cjs'));
    expect(undici.every((b) => b < 0x80)).toBe(true);
    const cache = join(dir, 'cache-undici');
    expect(cli(['--version'], { TSPOD_CODE_CACHE: cache }).code).toBe(0);
    expect(readdirSync(cache).filter((n) => n.startsWith('undici-'))).toEqual([]);
    // Nothing listens on port 1 of loopback: the client loads undici, connects and fails.
    const r = cli(['pull', '127.0.0.1:1/none:x'], { TSPOD_CODE_CACHE: cache });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ECONNREFUSED/);
    expect(readdirSync(cache).filter((n) => n.startsWith('undici-'))).toHaveLength(1);
  });

  it('rejects a corrupt cache, still runs, and replaces the cache', () => {
    cli(['--version']);
    const [name] = readdirSync(join(dir, 'cache'));
    const cacheFile = join(dir, 'cache', name!);
    writeFileSync(cacheFile, Buffer.alloc(4096, 7));
    const r = cli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^tspod\/\d+\.\d+\.\d+ /);
    expect(statSync(cacheFile).size).toBeGreaterThan(10_000);
  });

  it('keeps one cache per command, and drops the caches of an older build', () => {
    cli(['version']);
    cli(['images']);
    const names = readdirSync(join(dir, 'cache'));
    expect(names.filter((n) => n.endsWith('-version.v8'))).toHaveLength(1);
    expect(names.filter((n) => n.endsWith('-images.v8'))).toHaveLength(1);
    const stale = join(dir, 'cache', 'cli-v0.0.0-x64-1-1-run.v8');
    writeFileSync(stale, 'old');
    cli(['logout', '--help']); // a command with no cache yet writes one, and cleans up
    expect(readdirSync(join(dir, 'cache'))).not.toContain('cli-v0.0.0-x64-1-1-run.v8');
  });

  it('runs with the cache disabled or unwritable', () => {
    expect(cli(['version'], { TSPOD_CODE_CACHE: '0' }).code).toBe(0);
    const ro = join(dir, 'ro-file');
    writeFileSync(ro, '');
    chmodSync(ro, 0o444);
    // A cache "folder" that is a file: every write fails; the command must not.
    expect(cli(['version'], { TSPOD_CODE_CACHE: ro }).code).toBe(0);
  });

  it('keeps oclif help, topics and flag errors, with docker exit codes', () => {
    const help = cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/COMMANDS[\s\S]*\bpull\b[\s\S]*\brun\b/);
    const runHelp = cli(['run', '--help']);
    expect(runHelp.code).toBe(0);
    expect(runHelp.stdout).toContain('--network');
    const badFlag = cli(['run', '--no-such-flag', 'alpine']);
    expect(badFlag.code).toBe(125);
    expect(badFlag.stderr).toMatch(/Nonexistent flag: --no-such-flag/);
    // a missing argument: docker's one line, with the command's error status (125 for run, else 1)
    // (NODE_ENV=development would add oclif's own warning that the command did not parse its arguments)
    const prod = { NODE_ENV: 'production' };
    expect(cli(['rm'], prod)).toMatchObject({ code: 1, stderr: `tspod: "tspod rm" requires at least 1 argument; see 'tspod rm --help'\n` });
    expect(cli(['tag', 'x'], prod)).toMatchObject({ code: 1, stderr: `tspod: "tspod tag" requires exactly 2 arguments; see 'tspod tag --help'\n` });
    expect(cli(['run'], prod).code).toBe(125);
    // as docker: an unknown command or subcommand is one line and status 1; `help X` is `X --help`
    const unknown = cli(['no-such-command']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe("tspod: 'no-such-command' is not a tspod command; see 'tspod --help'\n");
    const unknownSub = cli(['network', 'bogus', '--flag']);
    expect(unknownSub.code).toBe(1);
    expect(unknownSub.stderr).toBe("tspod: 'network bogus' is not a tspod command; see 'tspod --help'\n");
    const helpRun = cli(['help', 'run']);
    expect(helpRun.code).toBe(0);
    expect(helpRun.stdout).toBe(runHelp.stdout);
    expect(cli(['network', 'ls']).code).toBe(0);
  });

  it('engine errors go through the bundled command classes (one line, exit code of the command)', () => {
    const r = cli(['rmi', 'no-such-image:1']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^tspod: .*no-such-image/);
  });
});
