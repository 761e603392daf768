/**
 * docker inspect's Config and HostConfig of a container, computed once at create from the image's
 * config and the run options exactly as given, and kept in the record: inspect shows what the
 * container was created with, not what a default would be today. Field names and types are docker's
 * (moby api/types/container Config and HostConfig); absent options are docker's zero values
 * (null lists, "", 0, false).
 */
import { hostname as hostHostname } from 'node:os';
import type { ImageConfig } from '../oci/types.js';
import type { NetworkRunOptions } from './network.js';
import { mergeEnv } from '../runtime/spec.js';
import { parsePublish } from '../runtime/network/ports.js';
import { parseSize } from '../runtime/options.js';
import type { InspectConfigFields } from '../state/containers.js';

/** The part of docker's Config that comes from the image and the run options, as the record keeps it. */
export type InspectConfig = InspectConfigFields;

export interface PortBinding { HostIp: string; HostPort: string }

/** The part of docker's HostConfig that comes from the run options (RestartPolicy, CgroupParent, Memory are in the record already). */
export interface InspectHostConfig {
  Binds: string[] | null;
  NetworkMode: string;
  PortBindings: Record<string, PortBinding[]>;
  AutoRemove: boolean;
  CapAdd: string[] | null;
  CapDrop: string[] | null;
  Dns: string[];
  DnsOptions: string[];
  DnsSearch: string[];
  ExtraHosts: string[] | null;
  Privileged: boolean;
  PublishAllPorts: boolean;
  ReadonlyRootfs: boolean;
  ShmSize: number;
  NanoCpus: number;
  PidsLimit: number | null;
}

export interface InspectConfigInput extends Pick<NetworkRunOptions, 'network' | 'publish' | 'publishAll' | 'dns' | 'dnsSearch' | 'dnsOptions' | 'addHosts'> {
  id: string;
  /** The user's environment: --env-file entries, then -e (as read, before the merge). */
  env: string[];
  command?: string[];
  entrypoint?: string;
  hostname?: string;
  user?: string;
  workdir?: string;
  volumes?: string[];
  rm?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  readOnly?: boolean;
  shmSize?: string;
  cpus?: string;
  pidsLimit?: number;
}

const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;
const nullIfEmpty = <T>(list: T[] | null | undefined): T[] | null => (list && list.length ? list : null);

/**
 * Config as docker's daemon merges it (moby daemon/commit.go merge): the user's Env first, then the
 * image's variables the user did not set; an --entrypoint drops the image's Cmd; a command replaces it.
 */
export function inspectConfig(image: ImageConfig, o: InspectConfigInput): InspectConfig {
  const ic = image.config ?? {};
  const userEnv = mergeEnv(o.env);
  const keyOf = (kv: string) => kv.slice(0, kv.indexOf('=') < 0 ? kv.length : kv.indexOf('='));
  const userKeys = new Set(userEnv.map(keyOf));
  const env = [...userEnv, ...(ic.Env ?? []).filter((kv) => !userKeys.has(keyOf(kv)))];
  const entrypoint = o.entrypoint !== undefined ? (o.entrypoint === '' ? null : [o.entrypoint]) : nullIfEmpty(ic.Entrypoint);
  const cmd = o.command?.length ? o.command : o.entrypoint !== undefined ? null : nullIfEmpty(ic.Cmd);
  return {
    Hostname: o.hostname ?? (o.network === 'host' ? hostHostname() : o.id.slice(0, 12)),
    User: o.user ?? ic.User ?? '',
    Env: nullIfEmpty(env),
    Cmd: cmd,
    Entrypoint: entrypoint,
    WorkingDir: o.workdir ?? ic.WorkingDir ?? '',
  };
}

/** docker's PortBindings key "80/tcp"; HostIp and HostPort as given ("" when not). */
export function portBindings(publish: string[] = []): Record<string, PortBinding[]> {
  const out: Record<string, PortBinding[]> = {};
  for (const spec of publish) {
    const p = parsePublish(spec);
    const given = spec.replace(/\/[a-z]+$/i, '').split(':');
    const key = `${p.containerPort}/${p.protocol}`;
    (out[key] ??= []).push({ HostIp: given.length === 3 ? p.hostIp : '', HostPort: p.hostPort ? String(p.hostPort) : '' });
  }
  return out;
}

export function inspectHostConfig(o: InspectConfigInput): InspectHostConfig {
  // docker's cli: cpus × 1e9; 0 is no limit (run's checks have refused anything else invalid)
  const nanoCpus = o.cpus === undefined ? 0 : Math.round(Number(o.cpus.trim()) * 1e9);
  return {
    Binds: nullIfEmpty(o.volumes),
    NetworkMode: o.network ?? 'bridge',
    PortBindings: portBindings(o.publish),
    AutoRemove: !!o.rm,
    CapAdd: nullIfEmpty(o.capAdd),
    CapDrop: nullIfEmpty(o.capDrop),
    Dns: o.dns ?? [],
    DnsOptions: o.dnsOptions ?? [],
    DnsSearch: o.dnsSearch ?? [],
    ExtraHosts: nullIfEmpty(o.addHosts),
    Privileged: !!o.privileged,
    PublishAllPorts: !!o.publishAll,
    ReadonlyRootfs: !!o.readOnly,
    ShmSize: o.shmSize !== undefined ? parseSize(o.shmSize, `--shm-size "${o.shmSize}"`) : DEFAULT_SHM_SIZE,
    NanoCpus: nanoCpus,
    PidsLimit: o.pidsLimit !== undefined && o.pidsLimit > 0 ? o.pidsLimit : null,
  };
}
