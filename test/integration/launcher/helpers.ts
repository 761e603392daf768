// Helpers for the launcher's integration tests: a busybox rootfs, a docker-like plan, and a run
// that captures the container's output.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { launch, launcherPath, type LaunchOptions, type LaunchResult } from '../../../src/runtime/launcher.js';
import type { LaunchPlan } from '../../../src/runtime/plan.js';
import { afterAll, beforeAll } from 'vitest';

export const BUSYBOX = '/bin/busybox';

/** Builds the launcher (make is incremental: cheap when up to date). */
export function buildLauncher(): void {
  execFileSync('make', ['-s', '-C', join(dirname(dirname(launcherPath())))], { stdio: 'inherit' });
}

export function tempDir(prefix = 'tspod-launcher-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A minimal rootfs: /bin/busybox plus a symlink per applet, and an empty /tmp. */
export function makeBusyboxRootfs(root: string): string {
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'tmp'), { mode: 0o1777 });
  copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
  execFileSync('chmod', ['0755', join(root, 'bin', 'busybox')]);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', join(root, 'bin', a));
  return root;
}

/**
 * The fixture of a describe block: registers hooks that build the launcher and make `dir` (a fresh
 * temporary directory) with a busybox rootfs at `rootfs` (dir/root) before the block, and remove them
 * after it. The paths are chosen now and made by the hook, so a skipped block makes nothing.
 */
export function useBusyboxRootfs(): { dir: string; rootfs: string } {
  const dir = join(tmpdir(), `tspod-launcher-${randomBytes(6).toString('hex')}`);
  const rootfs = join(dir, 'root');
  beforeAll(() => {
    buildLauncher();
    mkdirSync(dir, { mode: 0o700 });
    makeBusyboxRootfs(rootfs);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, rootfs };
}

/** Docker's defaults, trimmed to what busybox needs. */
export function basePlan(rootfs: string, args: string[], over: Partial<LaunchPlan> = {}): LaunchPlan {
  return {
    rootfs,
    namespaces: ['pid', 'mount', 'uts', 'ipc', 'net'],
    premounts: [],
    mounts: [
      { source: 'proc', destination: '/proc', type: 'proc', flags: ['nosuid', 'noexec', 'nodev'] },
      { source: 'tmpfs', destination: '/dev', type: 'tmpfs', flags: ['nosuid', 'strictatime'], data: 'mode=755,size=65536k' },
      { source: 'devpts', destination: '/dev/pts', type: 'devpts', flags: ['nosuid', 'noexec'], data: 'newinstance,ptmxmode=0666,mode=0620,gid=5' },
      { source: 'shm', destination: '/dev/shm', type: 'tmpfs', flags: ['nosuid', 'noexec', 'nodev'], data: 'mode=1777,size=65536k' },
      { source: 'mqueue', destination: '/dev/mqueue', type: 'mqueue', flags: ['nosuid', 'noexec', 'nodev'] },
      { source: 'sysfs', destination: '/sys', type: 'sysfs', flags: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ],
    devices: (['null:1:3', 'zero:1:5', 'full:1:7', 'random:1:8', 'urandom:1:9', 'tty:5:0'] as const).map((s) => {
      const [name, major, minor] = s.split(':');
      return { path: `/dev/${name}`, type: 'c' as const, major: Number(major), minor: Number(minor), mode: 0o666, uid: 0, gid: 0 };
    }),
    symlinks: [
      { target: '/proc/self/fd', path: '/dev/fd' },
      { target: '/proc/self/fd/0', path: '/dev/stdin' },
      { target: '/proc/self/fd/1', path: '/dev/stdout' },
      { target: '/proc/self/fd/2', path: '/dev/stderr' },
      { target: 'pts/ptmx', path: '/dev/ptmx' },
    ],
    maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/acpi', '/proc/scsi', '/sys/firmware'],
    readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    hostname: 'tspod-test',
    cwd: '/',
    env: ['PATH=/bin', 'HOME=/'],
    args,
    user: { uid: 0, gid: 0, additionalGids: [] },
    rlimits: [],
    noNewPrivileges: false,
    sync: false,
    ...over,
  };
}

export interface Captured {
  result: LaunchResult;
  out: string;
}

/** Runs a plan with stdout and stderr going to a temp file; returns the result and the output. */
export async function runCaptured(plan: LaunchPlan, opts: Omit<LaunchOptions, 'stdio'> = {}): Promise<Captured> {
  const dir = tempDir('tspod-out-');
  const file = join(dir, 'out');
  const fd = openSync(file, 'w');
  try {
    const result = await launch(plan, { ...opts, stdio: ['ignore', fd, fd] });
    return { result, out: readFileSync(file, 'utf8') };
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs a shell script in the container and returns its output, expecting exit 0. */
export async function sh(plan: LaunchPlan): Promise<string> {
  const { result, out } = await runCaptured(plan);
  if (result.exitCode !== 0) throw new Error(`container exited with ${result.exitCode}: ${out}`);
  return out;
}

/**
 * Host mounts (this process's mount namespace) that mention `dir` anywhere: as mount point,
 * root, source or option (an overlay's upperdir). Other test suites may mount things of their
 * own meanwhile, so tests compare this, not the whole table.
 */
export function hostMountsMentioning(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
}

/** Parent pid of a host process, from /proc/PID/status. */
export function ppidOf(pid: number): number {
  const m = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no PPid for ${pid}`);
  return Number(m[1]);
}

/** True while the process exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

export async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
