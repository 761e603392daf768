/** ps / inspect data: records reconciled with the truth, in docker's shapes. */
import type { EngineRoots } from '../state/paths.js';
import type { ContainerRecord } from '../state/containers.js';
import type { ContainerStore } from '../state/containers.js';
import { fail } from '../util/errors.js';
import { humanDuration } from '../util/duration.js';
import { containerStore, reconcile } from './reconcile.js';
import { logPath } from './detached.js';
import { networkSettings, readNetworkState } from './network.js';
import { readAttachConfig } from './attach-io.js';
import { readInspectMounts } from './run-options.js';

/** reconcile() under the lock when nobody else holds it; as recorded otherwise (that command is busy with it). */
export async function freshRecord(containers: ContainerStore, rec: ContainerRecord): Promise<ContainerRecord> {
  const lk = await containers.tryLock(rec.id).catch(() => undefined);
  if (!lk) return (await containers.get(rec.id)) ?? rec;
  try {
    return await reconcile(containers, lk.rec);
  } finally {
    lk.release();
  }
}

export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  command: string;
  created: string;
  state: ContainerRecord['state'];
  status: string;
  exitCode?: number;
  pid?: number;
  /** Published ports of a running container, as docker's PORTS column shows them: 0.0.0.0:8080->80/tcp. */
  ports: string[];
}

export interface ListOptions {
  all?: boolean;
  /** docker's --filter KEY=VALUE: id, name, status, ancestor, exited. */
  filters?: string[];
}

/** The statuses docker's `ps --filter status=` accepts (tspod's records use created, running, paused, exited). */
const DOCKER_STATUSES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];

export async function listContainers(roots: EngineRoots, opts: ListOptions = {}): Promise<ContainerSummary[]> {
  const containers = containerStore(roots);
  const filters = (opts.filters ?? []).map((f) => {
    const i = f.indexOf('=');
    if (i <= 0) throw fail('EINVAL', `invalid filter "${f}": want KEY=VALUE`);
    const key = f.slice(0, i), value = f.slice(i + 1);
    if (!['id', 'name', 'status', 'ancestor', 'exited'].includes(key)) throw fail('EINVAL', `invalid filter "${key}": supported are id, name, status, ancestor, exited`);
    if (key === 'status' && !DOCKER_STATUSES.includes(value)) throw fail('EINVAL', `invalid filter "status=${value}": a status is one of ${DOCKER_STATUSES.join(', ')}`);
    return { key, value };
  });
  const all = opts.all || filters.some((f) => f.key === 'status' || f.key === 'exited');
  const out: ContainerSummary[] = [];
  for (const r of await containers.list()) {
    const rec = await freshRecord(containers, r);
    if (!all && rec.state !== 'running' && rec.state !== 'paused') continue;
    const s = summary(rec);
    if (rec.state === 'running' || rec.state === 'paused') s.ports = await publishedPorts(containers.containerDir(rec.id));
    const ok = filters.every(({ key, value }) =>
      key === 'id' ? rec.id.startsWith(value)
        : key === 'name' ? rec.name.includes(value)
          : key === 'status' ? s.state === value
            : key === 'ancestor' ? ancestorMatches(rec, value)
              : rec.state === 'exited' && String(rec.exitCode) === value);
    if (ok) out.push(s);
  }
  return out.sort((a, b) => b.created.localeCompare(a.created));
}

/**
 * docker's ancestor=: the library resolves a local image's name to its ID (listContainers in src/index.ts),
 * so "busybox" matches what docker.io/library/busybox:latest is; an image ID or a prefix of 4+ hex digits;
 * else the reference as recorded. Images built on top of it are not followed.
 */
function ancestorMatches(rec: ContainerRecord, value: string): boolean {
  const hex = /^(?:sha256:)?([a-f0-9]{4,64})$/.exec(value)?.[1];
  return (hex !== undefined && rec.imageId.replace(/^sha256:/, '').startsWith(hex)) || rec.image === value;
}

/** docker's RestartPolicy: "on-failure:3" is { Name: "on-failure", MaximumRetryCount: 3 }. */
function restartPolicyOf(policy: string | undefined): { Name: string; MaximumRetryCount: number } {
  const [name = 'no', max] = (policy ?? 'no').split(':');
  return { Name: name, MaximumRetryCount: max === undefined ? 0 : Number(max) };
}

export function summary(rec: ContainerRecord): ContainerSummary {
  return {
    id: rec.id,
    name: rec.name,
    image: rec.image,
    command: [rec.path, ...(rec.args ?? [])].filter((x) => x !== undefined).join(' '),
    created: rec.created,
    state: rec.state,
    status: statusText(rec),
    exitCode: rec.exitCode,
    pid: rec.pid,
    ports: [],
  };
}

/** The port mappings a container's network attachments hold (network.json in its directory). */
async function publishedPorts(dir: string): Promise<string[]> {
  const saved = await readNetworkState(dir);
  return (saved?.attachments ?? []).flatMap((a) => a.ports.map((p) => `${p.hostIp || '0.0.0.0'}:${p.hostPort}->${p.containerPort}/${p.protocol}`));
}

/** "Up 3 minutes", "Exited (0) 2 seconds ago", "Created", "Up 5 seconds (Paused)". */
export function statusText(rec: ContainerRecord, now = Date.now()): string {
  if (rec.state === 'created') return 'Created';
  if (rec.state === 'exited') return `Exited (${rec.exitCode ?? 0}) ${ago(rec.finished, now)} ago`;
  const up = `Up ${ago(rec.started, now)}`;
  return rec.state === 'paused' ? `${up} (Paused)` : up;
}

function ago(iso: string | undefined, now: number): string {
  return humanDuration(iso ? now - Date.parse(iso) : 0);
}

/** docker inspect's shape (the fields tspod knows), plus the record's paths. */
export async function inspectContainer(roots: EngineRoots, ref: string): Promise<Record<string, unknown>> {
  const containers = containerStore(roots);
  const rec = await freshRecord(containers, await containers.find(ref));
  const dir = containers.containerDir(rec.id);
  const stdio = await readAttachConfig(dir);
  return {
    Id: rec.id,
    Created: rec.created,
    Path: rec.path ?? '',
    Args: rec.args ?? [],
    State: {
      Status: rec.state,
      Running: rec.state === 'running' || rec.state === 'paused',
      Paused: rec.state === 'paused',
      OOMKilled: rec.oomKilled ?? false,
      Dead: false,
      Pid: rec.state === 'running' || rec.state === 'paused' ? rec.pid ?? 0 : 0,
      ExitCode: rec.exitCode ?? 0,
      Error: rec.error ?? '',
      StartedAt: rec.started ?? '0001-01-01T00:00:00Z',
      FinishedAt: rec.finished ?? '0001-01-01T00:00:00Z',
    },
    Image: `sha256:${rec.imageId.replace(/^sha256:/, '')}`,
    Name: '/' + rec.name,
    RestartCount: rec.restartCount ?? 0,
    LogPath: logPath(dir),
    HostConfig: {
      ...rec.hostConfig,
      RestartPolicy: restartPolicyOf(rec.restartPolicy),
      CgroupParent: rec.cgroupParent ?? '',
      Memory: rec.limits?.memoryBytes ?? 0,
      // docker's: 0 when not set (the runtime's default, twice Memory, applies)
      MemorySwap: rec.limits?.memorySwapBytes ?? 0,
    },
    Config: {
      // Records written before Config was kept: the command line as the record has it.
      ...(rec.config ?? { Cmd: [rec.path, ...(rec.args ?? [])].filter((x) => x !== undefined) }),
      Image: rec.image,
      Tty: stdio.tty,
      OpenStdin: stdio.stdin,
      StdinOnce: stdio.stdinOnce ?? false,
      AttachStdin: stdio.stdinOnce ?? false,
      Labels: rec.labels ?? {},
    },
    Mounts: await readInspectMounts(dir),
    NetworkSettings: await networkSettings(roots, rec.id, dir),
    Tspod: { CgroupPaths: rec.cgroupPaths ?? [], MonitorPid: rec.monitorPid ?? 0, RecordDir: dir },
  };
}
