/**
 * stats and top: what the kernel says about a running container. CPU % is the cgroup's CPU time
 * over a sampling interval against wall time (× 100 per CPU, like docker); memory usage/limit
 * and pids from the cgroup; network from /proc/PID/net/dev of the init (its net namespace); block
 * I/O from blkio.throttle.io_service_bytes (v1) or io.stat (v2).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EngineRoots } from '../state/paths.js';
import type { ContainerRecord } from '../state/containers.js';
import { fail } from '../util/errors.js';
import { containerStore, isActive, openCgroup } from './reconcile.js';
import { freshRecord } from './list.js';

export interface ContainerStats {
  id: string;
  name: string;
  cpuPercent: number;
  memoryBytes: number;
  memoryLimitBytes?: number;
  pids: number;
  netRxBytes: number;
  netTxBytes: number;
  blockReadBytes: number;
  blockWriteBytes: number;
}

async function running(roots: EngineRoots, ref: string): Promise<ContainerRecord> {
  const containers = containerStore(roots);
  const rec = await freshRecord(containers, await containers.find(ref));
  if (!isActive(rec) || !rec.pid) throw fail('ESTATE', `container ${ref} is not running`);
  return rec;
}

export async function containerStats(roots: EngineRoots, ref: string, intervalMs = 500): Promise<ContainerStats> {
  const rec = await running(roots, ref);
  const cg = await openCgroup(rec);
  if (!cg) throw fail('ESTATE', `container ${ref}: its cgroup is gone`);
  const a = await cg.stats();
  const t0 = process.hrtime.bigint();
  await sleep(intervalMs);
  const b = await cg.stats();
  const wallNs = Number(process.hrtime.bigint() - t0);
  const cpuNs = (b.cpuUsageNs ?? 0) - (a.cpuUsageNs ?? 0);
  const net = await netDev(rec.pid!);
  const blk = await blockIo(cg.paths);
  return {
    id: rec.id,
    name: rec.name,
    cpuPercent: wallNs > 0 ? Math.max(0, (cpuNs / wallNs) * 100) : 0,
    memoryBytes: b.memoryBytes ?? 0,
    memoryLimitBytes: b.memoryLimitBytes,
    pids: b.pids ?? 0,
    netRxBytes: net.rx,
    netTxBytes: net.tx,
    blockReadBytes: blk.read,
    blockWriteBytes: blk.write,
  };
}

async function netDev(pid: number): Promise<{ rx: number; tx: number }> {
  const text = await readFile(`/proc/${pid}/net/dev`, 'utf8').catch(() => '');
  let rx = 0, tx = 0;
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === 'lo') continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    rx += f[0] ?? 0;
    tx += f[8] ?? 0;
  }
  return { rx, tx };
}

async function blockIo(paths: string[]): Promise<{ read: number; write: number }> {
  let read = 0, write = 0;
  for (const p of paths) {
    const v1 = await readFile(join(p, 'blkio.throttle.io_service_bytes'), 'utf8').catch(() => undefined);
    if (v1 !== undefined) {
      for (const l of v1.split('\n')) {
        const f = l.trim().split(/\s+/);
        if (f.length === 3 && f[1] === 'Read') read += Number(f[2]);
        if (f.length === 3 && f[1] === 'Write') write += Number(f[2]);
      }
    }
    const v2 = await readFile(join(p, 'io.stat'), 'utf8').catch(() => undefined);
    if (v2 !== undefined) {
      for (const m of v2.matchAll(/rbytes=(\d+)/g)) read += Number(m[1]);
      for (const m of v2.matchAll(/wbytes=(\d+)/g)) write += Number(m[1]);
    }
  }
  return { read, write };
}

/** top: the processes in the container's cgroup (host pids), with their user and command line. */
export async function containerTop(roots: EngineRoots, ref: string): Promise<{ pid: number; uid: number; cmd: string }[]> {
  const rec = await running(roots, ref);
  const cg = await openCgroup(rec);
  if (!cg) throw fail('ESTATE', `container ${ref}: its cgroup is gone`);
  const pids = new Set<number>();
  for (const p of cg.paths) {
    const text = await readFile(join(p, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const l of text.split('\n')) if (l) pids.add(Number(l));
  }
  const out: { pid: number; uid: number; cmd: string }[] = [];
  for (const pid of [...pids].sort((x, y) => x - y)) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
    if (cmd === undefined || status === undefined) continue;
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    out.push({ pid, uid, cmd: cmd.split('\0').filter(Boolean).join(' ') });
  }
  return out;
}
