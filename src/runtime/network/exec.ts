/**
 * The host tools the network code drives: iproute2 (`ip -batch -`), util-linux `nsenter` (to run
 * `ip` inside a container's network namespace: setns is unsafe in multithreaded Node) and nft scripts
 * (libnftables in this process, or `nft -f -`). One child process per batch; input on stdin, so nothing
 * is quoted through a shell.
 */
import { spawn } from 'node:child_process';
import { nativeNftRun, type NftResult } from '../../sys/index.js';
import { fail } from '../../util/errors.js';

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `file args…` with `input` on stdin; resolves with its status and output (never rejects on a non-zero status). */
export function execTool(file: string, args: string[], input = ''): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH, LC_ALL: 'C' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => {
      const enoent = (err as NodeJS.ErrnoException).code === 'ENOENT';
      reject(fail('ESYS', enoent ? `run ${file}: not installed (install ${file === 'nft' ? 'nftables' : file === 'nsenter' ? 'util-linux' : 'iproute2'})` : `run ${file}: ${err.message}`, err));
    });
    child.stdin.on('error', () => {});
    child.on('close', (code, signal) => resolve({ code: code ?? 128 + (signal ? 9 : 0), stdout, stderr }));
    child.stdin.end(input);
  });
}

/**
 * Starts `sh -c script name args…` in a session of its own with nothing on its stdio and `keep` as
 * its descriptor 3 (a lock it goes on holding), and does not wait for it; returns its pid. It
 * outlives this process by design: the kernel's slow part of a release (see deleteBridge).
 */
export function startDetached(name: string, script: string, args: string[], keep: number): number {
  const child = spawn('/bin/sh', ['-c', script, name, ...args], { detached: true, stdio: ['ignore', 'ignore', 'ignore', keep], env: { PATH, LC_ALL: 'C' } });
  child.on('error', () => {}); // reported synchronously as a missing pid, below
  if (child.pid === undefined) throw new Error(`run /bin/sh for ${name}: could not start it`);
  child.unref();
  return child.pid;
}

/** Like execTool, but a non-zero status becomes ESYS "WHAT: <first line of stderr>". */
export async function execChecked(what: string, file: string, args: string[], input = ''): Promise<string> {
  return checked(what, await execTool(file, args, input));
}

function checked(what: string, r: ExecResult): string {
  if (r.code !== 0) {
    const why = r.stderr.split('\n').map((l) => l.trim()).filter(Boolean).join('; ') || `exit status ${r.code}`;
    throw fail('ESYS', `${what}: ${why}`);
  }
  return r.stdout;
}

/** `ip -batch -` on the host. */
export function ipBatch(what: string, lines: string[]): Promise<string> {
  return execChecked(what, 'ip', ['-batch', '-'], lines.join('\n') + '\n');
}

/** `ip -batch -` inside the network namespace of `pid`. */
export function ipBatchIn(pid: number, what: string, lines: string[]): Promise<string> {
  return execChecked(what, 'nsenter', [`--net=/proc/${pid}/ns/net`, '--', 'ip', '-batch', '-'], lines.join('\n') + '\n');
}

/**
 * An nft script, `nft -f -`: through libnftables in this process when it loads (≈ 1–3 ms, no child
 * process), else the nft program.
 */
export async function runNft(script: string): Promise<ExecResult> {
  const r = nativeNftRun(script, false);
  return r ? asExecResult(r) : execTool('nft', ['-f', '-'], script);
}

function asExecResult(r: NftResult): ExecResult {
  return { code: r.status === 0 ? 0 : 1, stdout: r.out, stderr: r.err };
}

/** runNft; a failure becomes ESYS "WHAT: <nft's error, one line>". */
export async function nft(what: string, script: string): Promise<string> {
  return checked(what, await runNft(script));
}

/** `nft -j -a list …` parsed; undefined when the object does not exist. */
export async function nftJson(args: string[]): Promise<{ nftables: Record<string, unknown>[] } | undefined> {
  const native = nativeNftRun(`list ${args.join(' ')}\n`, true);
  const r = native ? asExecResult(native) : await execTool('nft', ['-j', '-a', 'list', ...args]);
  if (r.code !== 0) {
    if (/No such file or directory|does not exist/i.test(r.stderr)) return undefined;
    throw fail('ESYS', `nft list ${args.join(' ')}: ${r.stderr.trim() || `exit status ${r.code}`}`);
  }
  return JSON.parse(r.stdout) as { nftables: Record<string, unknown>[] };
}
