// Runs the tspod CLI as a user would (node bin/tspod.js …), against a private data root, runroot and
// engine config, so that tests never touch /var/lib/tspod or each other.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './registry.js';

export interface TspodResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface TspodEnv {
  root: string;
  runroot: string;
  configPath: string;
  env: NodeJS.ProcessEnv;
  /** Runs `tspod ARGS…`; resolves when it exits (never rejects on a non-zero status). */
  run(args: string[], opts?: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<TspodResult>;
  /** Removes the roots. */
  cleanup(): void;
}

export const TSPOD_BIN = join(repoRoot(), 'bin', 'tspod.js');

/**
 * A private tspod instance. `mirrorUrl` configures the fixture registry as the docker.io mirror,
 * as a pull-through cache would be. The data root lives under the repo's git-ignored .tspod-test/
 * (on the same disk as a real /var/lib/tspod), not tmpfs.
 */
export function tspodEnv(opts: { mirrorUrl?: string; config?: object } = {}): TspodEnv {
  const base = join(repoRoot(), '.tspod-test');
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(join(base, 'e2e-'));
  const root = join(dir, 'root');
  const runroot = join(dir, 'run');
  const configPath = join(dir, 'config.json');
  const config = opts.config ?? (opts.mirrorUrl ? { registryMirrors: { 'docker.io': [opts.mirrorUrl] } } : {});
  writeFileSync(configPath, JSON.stringify(config));
  const env = { ...process.env, TSPOD_ROOT: root, TSPOD_RUNROOT: runroot, TSPOD_CONFIG: configPath };
  return {
    root,
    runroot,
    configPath,
    env,
    run: (args, o = {}) => runTspod(args, { ...env, ...o.env }, o.input, o.timeoutMs),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function runTspod(args: string[], env: NodeJS.ProcessEnv, input?: string, timeoutMs = 120_000): Promise<TspodResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TSPOD_BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}
