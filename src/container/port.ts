/** port: the published ports of a running container, from its network attachments (issue 6's network.json). */
import type { EngineRoots } from '../state/paths.js';
import { containerStore, isActive } from './reconcile.js';
import { freshRecord } from './list.js';
import { readNetworkState } from './network.js';

export interface PublishedPort { containerPort: number; protocol: string; hostIp: string; hostPort: number }

export async function containerPorts(roots: EngineRoots, ref: string, filter?: string): Promise<PublishedPort[]> {
  const containers = containerStore(roots);
  const rec = await freshRecord(containers, await containers.find(ref));
  if (!isActive(rec)) return [];
  const state = await readNetworkState(containers.containerDir(rec.id));
  const out: PublishedPort[] = [];
  for (const a of state?.attachments ?? []) for (const p of a.ports ?? []) out.push({ containerPort: p.containerPort, protocol: p.protocol, hostIp: p.hostIp, hostPort: p.hostPort });
  if (filter === undefined) return out;
  const [port, proto = 'tcp'] = filter.split('/');
  return out.filter((p) => String(p.containerPort) === port && p.protocol === proto);
}
