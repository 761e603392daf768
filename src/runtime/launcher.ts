/**
 * Driving the native launcher (native/build/tspod-launch): spawn it, hand it the plan on fd 3,
 * read its report on fd 4, run the caller's hook between "pid" and the go-ahead, and turn the
 * outcome into a result or a TspodError. The protocol is documented in native/README.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Stream, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { fail, messageOf, TspodError, type ErrorCode } from '../util/errors.js';
import { serializePlan, type LaunchPlan } from './plan.js';

/** What the container's fd 0, 1 or 2 is connected to (as in child_process.spawn). */
export type StdioTarget = 'inherit' | 'ignore' | number | Stream;

export interface LaunchOptions {
  /** The container's stdin, stdout, stderr; default all 'inherit'. */
  stdio?: [StdioTarget, StdioTarget, StdioTarget];
  /**
   * Runs after the container's init exists (host pid given) and before it starts setting itself
   * up: place it in its cgroup, move a veth into its network namespace. Giving a hook turns the
   * plan's sync on. If it throws, the launcher is killed and launch() rejects with that error.
   * It may return plan records to send with the go-ahead (`veth` lines: native/README.md).
   */
  onPid?: (pid: number) => Promise<void | string> | void | string;
  /** Forward SIGINT/SIGTERM/SIGHUP received by this process to the launcher (default true). */
  forwardSignals?: boolean;
}

export interface LaunchResult {
  /** Host pid of the container's init. */
  pid: number;
  /** The exit status, or 128+N when killed by signal N. */
  exitCode: number;
  /** Set when the init was killed by a signal. */
  signal?: number;
}

let cachedRoot: string | undefined;

/**
 * The package root: the first directory with a package.json above this module (works from src/ under
 * vitest, from dist/src/ after tsc and from the bundled dist/tspod.cjs).
 */
function packageRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return (cachedRoot = dir);
    const up = dirname(dir);
    if (up === dir) throw fail('EINTERNAL', `find the tspod package: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** Absolute path of the launcher binary: $TSPOD_LAUNCHER if set, else native/build/tspod-launch in the package. */
export function launcherPath(): string {
  return process.env.TSPOD_LAUNCHER || join(packageRoot(), 'native', 'build', 'tspod-launch');
}

/** The tspod CLI's entry script (bin/tspod.js), for commands the monitor runs later on its own. */
export function cliPath(): string {
  return join(packageRoot(), 'bin', 'tspod.js');
}

const KIND_CODES: Record<string, ErrorCode> = { '125': 'ELAUNCH', '126': 'ENOEXEC', '127': 'ENOCMD' };
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Starts a container from a plan and resolves when its init ends. Rejects with ENOCMD (127),
 * ENOEXEC (126) or ELAUNCH (125) when the launcher reports an error before exec, with
 * ELAUNCH when the launcher itself dies unexpectedly, and with the hook's error if onPid throws.
 */
export function launch(plan: LaunchPlan, opts: LaunchOptions = {}): Promise<LaunchResult> {
  const sync = plan.sync || opts.onPid !== undefined;
  let text: string;
  let path: string;
  try {
    text = serializePlan({ ...plan, sync });
    path = launcherPath();
  } catch (err) {
    return Promise.reject(err);
  }

  return new Promise<LaunchResult>((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(path, [], {
        stdio: [...(opts.stdio ?? ['inherit', 'inherit', 'inherit']), 'pipe', 'pipe'],
        env: {},
      });
    } catch (err) {
      reject(fail('ELAUNCH', `spawn launcher ${path}: ${messageOf(err)}`, err));
      return;
    }
    const planOut = child.stdio[3] as Writable;
    const reportIn = child.stdio[4] as Readable;

    let pid: number | undefined;
    let exit: { exitCode: number; signal?: number } | undefined;
    let reported: TspodError | undefined;
    let hookError: unknown;
    let hookFailed = false;
    let settled = false;
    const protocolErrors: string[] = [];

    const forward = (sig: NodeJS.Signals) => { child.kill(sig); };
    const forwarding = opts.forwardSignals ?? true;
    if (forwarding) for (const s of FORWARDED) process.on(s, forward);
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      if (forwarding) for (const s of FORWARDED) process.off(s, forward);
      fn();
    };

    // The launcher may exit before reading everything (a bad plan): EPIPE here is not the story,
    // its report is.
    planOut.on('error', () => {});
    reportIn.on('error', () => {});
    planOut.write(text);
    if (!sync) planOut.end();

    const onPidLine = async (n: number) => {
      pid = n;
      if (!sync) return;
      let records: string | void;
      try {
        records = await opts.onPid?.(n);
      } catch (err) {
        hookFailed = true;
        hookError = err;
        child.kill('SIGKILL');
        return;
      }
      planOut.end((records || '') + 'go\n');
    };

    const lines = createInterface({ input: reportIn, crlfDelay: Infinity });
    lines.on('line', (line) => {
      const sp = line.indexOf(' ');
      const kw = sp < 0 ? line : line.slice(0, sp);
      const rest = sp < 0 ? '' : line.slice(sp + 1);
      if (kw === 'pid' && /^\d+$/.test(rest)) void onPidLine(Number(rest));
      else if (kw === 'started') { /* exec succeeded; nothing to do until the end */ }
      else if (kw === 'exit' && /^\d+$/.test(rest)) exit = { exitCode: Number(rest) };
      else if (kw === 'signal' && /^\d+$/.test(rest)) exit = { exitCode: 128 + Number(rest), signal: Number(rest) };
      else if (kw === 'error') {
        const m = /^(\d+) (.*)$/.exec(rest);
        reported = fail(KIND_CODES[m?.[1] ?? ''] ?? 'ELAUNCH', m ? m[2]! : rest);
      } else protocolErrors.push(line);
    });

    child.on('error', (err) => {
      finish(() => reject(fail('ELAUNCH', `spawn launcher ${path}: ${messageOf(err)}`, err)));
    });
    child.on('close', (code, signal) => {
      finish(() => {
        if (hookFailed) reject(hookError);
        else if (reported) reject(reported);
        else if (exit && pid !== undefined) resolve({ pid, ...exit });
        else {
          const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
          const extra = protocolErrors.length ? ` (unexpected report lines: ${protocolErrors.join(' | ')})` : '';
          reject(fail('ELAUNCH', `run launcher ${path}: it ${how} before reporting the container's end${extra}`));
        }
      });
    });
  });
}
