// tspod-monitor on its own: a real process tree, with /bin/sh standing in for the launcher (the
// monitor runs whatever it is given after "--" with fds 3 and 4 passed through).
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from '../../support/registry.js';

const MONITOR = join(repoRoot(), 'native', 'build', 'tspod-monitor');
const dir = mkdtempSync(join(tmpdir(), 'tspod-monitor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function runMonitor(name: string, script: string, extra: string[] = []) {
  const log = join(dir, `${name}.log`);
  const exit = join(dir, `${name}.exit`);
  const child = spawn(MONITOR, ['--log', log, '--exit', exit, ...extra, '--', '/bin/sh', '-c', script],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], detached: true });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  return { code, stderr, log, exit };
}

const entries = (log: string) => readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { log: string; stream: string; time: string });

// Built by `npm test` (pretest → make -C native); no skip: a missing binary is a failure.
describe('tspod-monitor', () => {
  it('writes stdout and stderr as json-file records, escaping what JSON needs, and records the exit status', async () => {
    const r = await runMonitor('basic', `printf 'plain\\n'; printf 'quote " back \\\\ tab \\t bell \\a\\n' >&2; printf 'no newline at end'; exit 3`);
    expect(r.code).toBe(0);
    const e = entries(r.log);
    expect(e.find((x) => x.stream === 'stdout' && x.log === 'plain\n')).toBeTruthy();
    expect(e.find((x) => x.stream === 'stderr')?.log).toBe('quote " back \\ tab \t bell \u0007\n');
    expect(e.find((x) => x.log === 'no newline at end')?.stream).toBe('stdout');
    for (const x of e) expect(x.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    const ex = JSON.parse(readFileSync(r.exit, 'utf8'));
    expect(ex).toMatchObject({ exitCode: 3, oomKills: 0 });
    expect(statSync(r.exit).isFile()).toBe(true);
    expect(existsSync(r.exit + '.tmp')).toBe(false);
  });

  it('splits lines longer than 16 KiB into records, like docker, and keeps UTF-8 intact', async () => {
    const r = await runMonitor('long', `head -c 40000 /dev/zero | tr '\\0' x; echo; printf 'h\\303\\251llo\\n'`);
    const e = entries(r.log);
    expect(e.map((x) => x.log).join('')).toBe('x'.repeat(40000) + '\nhéllo\n');
    expect(Math.max(...e.map((x) => x.log.length))).toBeLessThanOrEqual(16384);
  });

  it('records 128+N for a signal and reads the OOM counter file it is given', async () => {
    const oom = join(dir, 'memory.events');
    writeFileSync(oom, 'low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n'); // the line the monitor reads, as in cgroupfs
    const r = await runMonitor('sig', 'kill -9 $$', ['--oom', oom]);
    expect(JSON.parse(readFileSync(r.exit, 'utf8'))).toMatchObject({ exitCode: 137, oomKills: 1 });
  });

  it('outlives its parent, forwards SIGTERM to the launcher, and reports a launcher it cannot run on fd 4', async () => {
    const log = join(dir, 'orphan.log');
    const exit = join(dir, 'orphan.exit');
    // a shell that starts the monitor in the background and exits at once
    const sh = spawn('/bin/sh', ['-c', `"${MONITOR}" --log "${log}" --exit "${exit}" -- /bin/sh -c 'trap "echo got TERM; exit 7" TERM; echo up; while :; do sleep 0.05; done' 3</dev/null 4>/dev/null & echo $!`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    sh.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    await new Promise((r) => sh.on('close', r));
    const mpid = Number(out.trim());
    for (let i = 0; i < 100 && !(existsSync(log) && readFileSync(log, 'utf8').includes('up')); i++) await sleep(50);
    expect(readFileSync(log, 'utf8')).toContain('"up\\n"');
    process.kill(mpid, 'SIGTERM');
    for (let i = 0; i < 100 && !existsSync(exit); i++) await sleep(50);
    expect(JSON.parse(readFileSync(exit, 'utf8')).exitCode).toBe(7);
    expect(readFileSync(log, 'utf8')).toContain('got TERM');

    const child = spawn(MONITOR, ['--log', join(dir, 'x.log'), '--exit', join(dir, 'x.exit'), '--', '/nonexistent/launcher'], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
    let report = '';
    (child.stdio[4] as NodeJS.ReadableStream).setEncoding('utf8').on('data', (d: string) => (report += d));
    await new Promise((r) => child.on('close', r));
    expect(report).toMatch(/^error 125 monitor: exec launcher: no such file or directory/im);
  });

  it('refuses a missing option with one clear line', async () => {
    const child = spawn(MONITOR, ['--log'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const code = await new Promise((r) => child.on('close', r));
    expect(code).toBe(125);
    expect(err.trim()).toBe('tspod-monitor: option --log needs a value');
  });
});
