/**
 * The host tools the network code drives: iproute2 (`ip -batch -`), util-linux `nsenter` (to run
 * `ip` inside a container's network namespace: setns is unsafe in multithreaded Node) and `nft -f -`.
 * One child process per batch; input on stdin, so nothing is quoted through a shell.
 */
import { spawn } from 'node:child_process';
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

/** Like execTool, but a non-zero status becomes ESYS "WHAT: <first line of stderr>". */
export async function execChecked(what: string, file: string, args: string[], input = ''): Promise<string> {
  const r = await execTool(file, args, input);
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

/** `nft -f -`. */
export function nft(what: string, script: string): Promise<string> {
  return execChecked(what, 'nft', ['-f', '-'], script);
}

/** `nft -j -a list …` parsed; undefined when the object does not exist. */
export async function nftJson(args: string[]): Promise<{ nftables: Record<string, unknown>[] } | undefined> {
  const r = await execTool('nft', ['-j', '-a', 'list', ...args]);
  if (r.code !== 0) {
    if (/No such file or directory|does not exist/i.test(r.stderr)) return undefined;
    throw fail('ESYS', `nft list ${args.join(' ')}: ${r.stderr.trim() || `exit status ${r.code}`}`);
  }
  return JSON.parse(r.stdout) as { nftables: Record<string, unknown>[] };
}
