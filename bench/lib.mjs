// Small helpers of the benchmark runner: tool detection, timed runs, interleaving, statistics, process-tree memory.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, delimiter } from 'node:path';

export const log = (msg) => process.stderr.write(`bench: ${msg}\n`);

/** Absolute path of an executable on PATH (plus the sbin folders root has), or undefined. */
export function which(cmd) {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    const p = join(d, cmd);
    if (d && existsSync(p)) return p;
  }
  return undefined;
}

/** Runs to completion; throws with the tail of stderr unless `allowFail`. Returns { status, stdout, stderr, ms }. */
export function sh(cmd, args, opts = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000, killSignal: 'SIGKILL', ...opts });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0 && !opts.allowFail) {
    const why = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n').slice(-4).join(' | ');
    throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status ?? r.signal}: ${why}`);
  }
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ms };
}

/** Children of shAsync still running: cleanup kills them before it removes what they use. */
export const inFlight = new Set();

/** Like sh, asynchronously (so a sampler can run meanwhile). */
export function shAsync(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    inFlight.add(child);
    let out = '';
    let err = '';
    child.stdout?.on('data', (d) => (out += d));
    child.stderr?.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      inFlight.delete(child);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (status !== 0 && !opts.allowFail) reject(new Error(`${cmd} ${args.join(' ')}: exit ${status ?? signal}: ${err.trim().split('\n').slice(-4).join(' | ')}`));
      else resolve({ status, stdout: out, stderr: err, ms });
    });
  });
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Runs the cases interleaved (A B C A B C …), `runs` rounds after `warmup` untimed rounds. A case is
 * { name, cmd, args, env?, before?(), after?() }; before/after are untimed (e.g. wiping a store before a pull).
 * A case whose first run fails is dropped with its error, the others go on. Returns per case { name, ms[], error? }.
 */
export async function interleave(cases, { runs, warmup = 1 }) {
  const results = new Map(cases.map((c) => [c.name, { name: c.name, ms: [] }]));
  let live = [...cases];
  for (let round = -warmup; round < runs; round++) {
    for (const c of live) {
      await new Promise((r) => setImmediate(r)); // let a SIGINT/SIGTERM handler run (and clean up) between runs
      const res = results.get(c.name);
      try {
        c.before?.();
        const r = sh(c.cmd, c.args, { env: c.env ?? process.env, allowFail: true });
        c.after?.();
        if (r.status !== 0) throw new Error(`exit ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}`);
        if (round >= 0) res.ms.push(r.ms);
      } catch (err) {
        res.error = `${c.cmd} ${c.args.join(' ')}: ${err.message}`;
        log(`${c.name}: ${res.error}`);
        try { c.after?.(); } catch { /* best effort */ }
        live = live.filter((x) => x !== c);
      }
    }
  }
  return [...results.values()].map((r) => ({ ...r, median: median(r.ms), runs: r.ms.length }));
}

/** Pids of the whole process tree under `pid` (children by /proc/PID/stat ppid), excluding `pid` itself. */
export function descendants(pid) {
  const kids = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(name));
    } catch {
      // gone
    }
  }
  const out = [];
  const stack = [...(kids.get(pid) ?? [])];
  while (stack.length) {
    const p = stack.pop();
    out.push(p);
    stack.push(...(kids.get(p) ?? []));
  }
  return out;
}

/** Proportional set size (kB) of a process: its fair share of shared pages, so shared libraries count once. */
export function pssKb(pid) {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Samples the summed PSS of every process under this one (with the bench as child subreaper, detached
 * monitors and containers stay in the tree) every `ms`; stop() returns the peak in MiB.
 */
export function memorySampler(ms = 50) {
  let peak = 0;
  const tick = () => {
    let kb = 0;
    for (const p of descendants(process.pid)) kb += pssKb(p);
    peak = Math.max(peak, kb);
  };
  const timer = setInterval(tick, ms);
  return { stop: () => { clearInterval(timer); tick(); return peak / 1024; } };
}

/** Makes this process a child subreaper (prctl PR_SET_CHILD_SUBREAPER) with koffi, when it is installed. */
export async function becomeSubreaper(require) {
  try {
    const koffi = require('koffi');
    const prctl = koffi.load('libc.so.6').func('int prctl(int, unsigned long, unsigned long, unsigned long, unsigned long)');
    return prctl(36, 1, 0, 0, 0) === 0;
  } catch {
    return false;
  }
}

export const fmtMs = (x) => (Number.isFinite(x) ? (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`) : '—');
