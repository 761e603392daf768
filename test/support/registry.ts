// The fixture registry for tests: a real docker-registry on 127.0.0.1 with the test images pushed by
// fixtures/registry.mjs (see fixtures/README.md for the images).
//
//   let registry: FixtureRegistry;
//   beforeAll(async () => { registry = await startFixtureRegistry(); });
//   afterAll(async () => { await registry?.stop(); });
//
// Lifetime: calls in one process (worker thread) share one lease (a reference count); the first call starts the registry
// (or reuses one already running) and populates it, the last stop() drops the lease. The registry process is
// stopped when the last lease in any process is dropped, and only if a lease holder started it: a registry
// started by hand (`node fixtures/registry.mjs start`) keeps running for the next `vitest run`.

import { execFile, execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { threadId } from 'node:worker_threads';

export interface FixtureRegistry {
  /** e.g. "http://127.0.0.1:40123" */
  url: string;
  /** e.g. "127.0.0.1:40123", the registry part of an image reference */
  host: string;
  /** Drops this handle's share; stops the registry when it was the last and this process started it. */
  stop(): Promise<void>;
}

/** Output of `fixtures/registry.mjs populate`. */
export interface PopulateSummary {
  url: string;
  host: string;
  present: string[];
  pushed: string[];
  skipped: { image: string; reason: string }[];
  started: boolean;
}

/** Repositories and tags in the fixture registry. */
export const FIXTURE_IMAGES = {
  busybox: 'library/busybox:latest',
  layered: 'library/layered:latest',
  /** OCI index: linux/amd64, linux/arm64/v8, linux/arm/v7, linux/arm/v6 (needs the alpine fixtures) */
  alpineIndex: 'library/alpine:3.19',
  /** the per-platform images of that index, by OCI platform */
  alpinePlatforms: {
    'linux/amd64': 'library/alpine:3.19-amd64',
    'linux/arm64/v8': 'library/alpine:3.19-arm64v8',
    'linux/arm/v7': 'library/alpine:3.19-armv7',
    'linux/arm/v6': 'library/alpine:3.19-armv6',
  },
  /** Docker v2 schema 2, linux/amd64 (needs the alpine fixtures) */
  alpineDocker: 'library/alpine:3.20',
} as const;

/** The repository root (where package.json lives). */
export function repoRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

const SCRIPT = join(repoRoot(), 'fixtures', 'registry.mjs');

/** ../shared/fixtures/alpine next to the repository, or undefined when it is absent. */
export function alpineFixturesDir(): string | undefined {
  const dir = resolve(repoRoot(), '..', 'shared', 'fixtures', 'alpine');
  return existsSync(join(dir, 'SHA256SUMS')) ? dir : undefined;
}

/** Runs fixtures/registry.mjs with args; resolves with its stdout parsed as JSON. */
export function fixtureScript<T = unknown>(args: string[]): Promise<T> {
  return new Promise((res, rej) => {
    execFile(process.execPath, [SCRIPT, ...args], { maxBuffer: 16 << 20, timeout: 600_000 }, (err, stdout, stderr) => {
      if (err) {
        const why = stderr.trim().split('\n').slice(-5).join('\n') || err.message;
        rej(new Error(`run fixtures/registry.mjs ${args.join(' ')}: ${why}`));
        return;
      }
      try {
        res(JSON.parse(stdout) as T);
      } catch {
        rej(new Error(`run fixtures/registry.mjs ${args.join(' ')}: unexpected output: ${stdout.slice(0, 200)}`));
      }
    });
  });
}

/** This process's (and worker thread's) lease on the registry, as fixtures/registry.mjs names it. */
export const LEASE = `${process.pid}-${threadId}`;

let refs = 0;
let shared: Promise<PopulateSummary> | undefined;
let exitHookInstalled = false;

function releaseSync(): void {
  if (refs === 0) return;
  refs = 0;
  shared = undefined;
  try {
    execFileSync(process.execPath, [SCRIPT, 'stop', '--lease', LEASE], { stdio: 'ignore', timeout: 30_000 });
  } catch {
    // best effort at exit; a dead lease holder's lease is dropped by the next caller anyway
  }
}

/** Starts (or reuses) the fixture registry and makes sure every fixture image is in it. */
export async function startFixtureRegistry(): Promise<FixtureRegistry> {
  refs++;
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', releaseSync);
  }
  shared ??= fixtureScript<PopulateSummary>(['populate', '--lease', LEASE]);
  let summary: PopulateSummary;
  try {
    summary = await shared;
  } catch (err) {
    await release();
    throw err;
  }
  let stopped = false;
  return {
    url: summary.url,
    host: summary.host,
    async stop() {
      if (stopped) return;
      stopped = true;
      await release();
    },
  };
}

async function release(): Promise<void> {
  if (refs === 0) return;
  refs--;
  if (refs > 0) return;
  shared = undefined;
  await fixtureScript(['stop', '--lease', LEASE]);
}

/**
 * Lists the tree under `sub` (e.g. "/layered") of the root filesystem at `rootfs`, one line per path in
 * the format of fixtures/layered.expected.txt: `<path> <dir|file|symlink|other> <mode> <uid>:<gid> [<JSON>]`,
 * sorted. File contents are included, so use it on small trees.
 */
export function listTree(rootfs: string, sub: string): string[] {
  const lines: string[] = [];
  const visit = (rel: string): void => {
    const abs = join(rootfs, rel);
    const st = lstatSync(abs);
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    const owner = `${st.uid}:${st.gid}`;
    if (st.isDirectory()) {
      lines.push(`${rel} dir ${mode} ${owner}`);
      for (const name of readdirSync(abs)) visit(`${rel}/${name}`);
    } else if (st.isFile()) {
      lines.push(`${rel} file ${mode} ${owner} ${JSON.stringify(readFileSync(abs, 'utf8'))}`);
    } else if (st.isSymbolicLink()) {
      lines.push(`${rel} symlink ${mode} ${owner} ${JSON.stringify(readlinkSync(abs))}`);
    } else {
      lines.push(`${rel} other ${mode} ${owner}`);
    }
  };
  visit(sub.replace(/\/+$/, ''));
  return lines.sort((a, b) => (a.split(' ')[0]! < b.split(' ')[0]! ? -1 : 1));
}

/** fixtures/layered.expected.txt without its comments: what listTree(rootfs, '/layered') must return. */
export function layeredExpected(): string[] {
  return readFileSync(join(repoRoot(), 'fixtures', 'layered.expected.txt'), 'utf8')
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'));
}
