/**
 * The network step of a container's life, for the run/start paths: validate the flags before
 * anything is claimed, write the etc files, attach at the launcher's onPid step (the init exists
 * in its own network namespace and waits, so user code never runs without its network), release
 * when the container ends. The work itself is in src/runtime/network/.
 */
import { writeFileSync } from 'node:fs';
import { readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { containersRoot, type EngineRoots } from '../state/paths.js';
import { ContainerStore, type ContainerRecord } from '../state/containers.js';
import type { ImageConfig } from '../oci/types.js';
import {
  checkDns, containerLeases, exposedPorts, leaseAlive, leaseVethRecord, processStartTime, parseAddHost, parseNetworkMode, parsePublish, reconcileNetworks, setupNetwork, teardownNetwork,
  writeEtcFiles, type EtcFiles, type Lease, type NetworkChoice, type NetworkState, type PortRequest,
} from '../runtime/network/index.js';
import type { LaunchPlan } from '../runtime/plan.js';
import { fail } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { isAlive } from '../state/proc.js';
import { monitorState, planTextPath } from './detached.js';

export interface NetworkRunOptions {
  /** bridge (default), none, host, container:NAME, or a user-defined network's name. */
  network?: string;
  /** -p [HOSTIP:][HOSTPORT:]CTRPORT[/PROTO] */
  publish?: string[];
  /** -P: publish every EXPOSEd port on a random host port. */
  publishAll?: boolean;
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** --add-host NAME:IP */
  addHosts?: string[];
  /** --ip: a fixed address on the network. */
  ip?: string;
  /** --network-alias: more names on a user-defined network. */
  networkAliases?: string[];
}

/** A process, pinned by its start time (clock ticks since boot, /proc/PID/stat field 22). */
export interface LeaseOwner {
  pid: number;
  startTime: number;
}

const ownerOpt = (owner?: LeaseOwner) => (owner ? { owner: { pid: owner.pid, startTime: String(owner.startTime) } } : {});

export interface ContainerNetwork {
  choice: NetworkChoice;
  /** What the plan builder needs: a new network namespace ('none', also for bridge) or the host's. */
  planMode: 'none' | 'host';
  etcFiles: EtcFiles;
  /**
   * Attach the container's init (at onPid): returns the launcher's `veth` record to send with the
   * go-ahead ('' for none/host/container:). `owner`: the process whose life keeps the lease when it
   * is not the init (a detached container's monitor, so the lease outlives restarts).
   */
  attach(pid: number, owner?: LeaseOwner): Promise<string>;
  /** Detach; idempotent. */
  release(): Promise<void>;
  /** Adjusts the launch plan (--network container:NAME shares that container's namespace). */
  adjustPlan(plan: LaunchPlan): void;
}

/**
 * Checks the network flags (one clear error, before a name or a snapshot is claimed); `warn`: say on
 * stderr what is ignored (once per run: the first check).
 */
export function checkNetworkOptions(opts: NetworkRunOptions, warn = false): NetworkChoice {
  const choice = parseNetworkMode(opts.network);
  if (choice.kind === 'container') {
    // docker: "conflicting options": the joined container's files are used
    const clash = (flag: string, v: unknown) => { if (v) throw fail('EINVAL', `conflicting options: ${flag} and the network mode (--network ${opts.network})`); };
    clash('--dns', opts.dns?.length);
    clash('--dns-search', opts.dnsSearch?.length);
    clash('--dns-option', opts.dnsOptions?.length);
    clash('--add-host', opts.addHosts?.length);
  }
  const bridgeOnly = (flag: string, v: unknown) => {
    if (choice.kind !== 'bridge' && v) throw fail('EINVAL', `${flag} needs a bridge network (--network ${opts.network} has none)`);
  };
  if (choice.kind === 'host' && (opts.publish?.length || opts.publishAll)) {
    // docker's behaviour: the container's ports are the host's already
    if (warn) process.stderr.write('WARNING: Published ports are discarded when using host network mode\n');
  } else {
    bridgeOnly('-p/--publish', opts.publish?.length);
    bridgeOnly('-P/--publish-all', opts.publishAll);
  }
  bridgeOnly('--ip', opts.ip);
  bridgeOnly('--network-alias', opts.networkAliases?.length);
  for (const p of opts.publish ?? []) parsePublish(p);
  for (const h of opts.addHosts ?? []) parseAddHost(h);
  checkDns({ dns: opts.dns, dnsSearch: opts.dnsSearch, dnsOptions: opts.dnsOptions });
  return choice;
}

/** What network.json records: the request (for a later start), and the attachments (for inspect). */
export interface SavedNetwork extends NetworkState {
  request?: { network?: string; ip?: string; publish: PortRequest[]; aliases?: string[]; hostname: string; addHosts?: string[] };
  /** Networks added by `network connect`: attached again at every start, as docker does. */
  connected?: { network: string; ip?: string; aliases?: string[] }[];
}
type SavedRequest = NonNullable<SavedNetwork['request']>;

/** Writes the etc files into the container directory `dir` and returns the attach/release pair. */
export async function prepareNetwork(args: {
  roots: EngineRoots; id: string; name: string; hostname: string; dir: string; config: ImageConfig; opts: NetworkRunOptions;
}): Promise<ContainerNetwork> {
  const { roots, id, name, hostname, dir, opts } = args;
  const choice = checkNetworkOptions(opts);
  const kind = choice.kind;
  let etcFiles = await writeEtcFiles(dir, hostname, kind, { dns: opts.dns, dnsSearch: opts.dnsSearch, dnsOptions: opts.dnsOptions, addHosts: opts.addHosts });
  let joinNet: LaunchPlan['joinNet'];
  if (choice.kind === 'container') {
    const target = await findContainer(roots, choice.container);
    joinNet = await netnsOwner(roots, target);
    const tdir = new ContainerStore(containersRoot(roots)).containerDir(target.id);
    etcFiles = { ...etcFiles, hosts: join(tdir, 'hosts'), resolvConf: join(tdir, 'resolv.conf') };
  }
  const statePath = join(dir, 'network.json');
  const publish: PortRequest[] = [...(opts.publish ?? []).map(parsePublish), ...(opts.publishAll ? exposedPorts(args.config.config?.ExposedPorts) : [])];
  let attached = false;
  const request: SavedRequest = {
    network: opts.network, ip: opts.ip, publish, aliases: opts.networkAliases, hostname, addHosts: opts.addHosts,
  };
  // Synchronous: one small file, between the init's creation and its go-ahead (an asynchronous write
  // costs a thread-pool round trip there).
  const save = (attachments: Lease[]) => writeFileSync(statePath, JSON.stringify({ mode: opts.network ?? 'bridge', request, attachments } satisfies SavedNetwork, null, 2) + '\n');
  save([]);
  return {
    choice,
    planMode: kind === 'host' ? 'host' : 'none',
    etcFiles,
    async attach(pid, owner) {
      if (choice.kind !== 'bridge') return '';
      attached = true;
      const lease = await setupNetwork(roots.root, {
        containerId: id, containerName: name, hostname, network: choice.network, ip: opts.ip, publish,
        aliases: opts.networkAliases, hostsFile: etcFiles.hosts, addHosts: opts.addHosts,
      }, pid, { launcher: true, ...ownerOpt(owner) });
      save([lease]);
      return leaseVethRecord(lease);
    },
    async release() {
      if (!attached) return;
      attached = false;
      await teardownNetwork(roots.root, id);
    },
    adjustPlan(plan) {
      if (!joinNet) return;
      plan.namespaces = plan.namespaces.filter((n) => n !== 'net');
      plan.loopbackUp = false;
      plan.joinNet = joinNet;
    },
  };
}

/** The init whose network namespace `--network container:NAME` shares (pid + start time). */
async function netnsOwner(roots: EngineRoots, rec: ContainerRecord): Promise<{ pid: number; startTime: number }> {
  const r = rec as ContainerRecord & { pid?: number; pidStart?: number };
  if (r.pid !== undefined && r.pidStart !== undefined && processStartTime(r.pid) === String(r.pidStart) && rec.state === 'running') {
    return { pid: r.pid, startTime: r.pidStart };
  }
  const live = (await containerLeases(roots.root, rec.id)).find((l) => processStartTime(l.pid) === l.startTime);
  if (live) return { pid: live.pid, startTime: Number(live.startTime) };
  throw fail('ESTATE', `--network container:${rec.name}: the container is not running`);
}

export { reconcileNetworks, teardownNetwork };

/** The network state a container directory records (what inspect shows); undefined when none was written. */
export async function readNetworkState(dir: string): Promise<SavedNetwork | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, 'network.json'), 'utf8')) as SavedNetwork;
  } catch {
    return undefined;
  }
}

/**
 * For the create/start life cycle: attaches a started container's init `pid` (`root` is the data root) to the
 * network recorded in <dir>/network.json by prepareNetwork() at create time. Call it from the
 * launcher's onPid step, and releaseNetwork() when the container stops, is removed or reconciled.
 * A no-op for --network none/host.
 */
export async function attachSavedNetwork(root: string, rec: Pick<ContainerRecord, 'id' | 'name'>, dir: string, pid: number, owner?: LeaseOwner): Promise<string> {
  const saved = await readNetworkState(dir);
  const req = saved?.request;
  if (!saved || !req) return '';
  const choice = parseNetworkMode(req.network);
  if (choice.kind !== 'bridge') return '';
  await teardownNetwork(root, rec.id); // a previous run's leases, if its stop was not seen
  const leases: Lease[] = [];
  try {
    leases.push(await setupNetwork(root, {
      containerId: rec.id, containerName: rec.name, hostname: req.hostname, network: choice.network, ip: req.ip, publish: req.publish,
      aliases: req.aliases, hostsFile: join(dir, 'hosts'), addHosts: req.addHosts,
    }, pid, { launcher: true, ...ownerOpt(owner) }));
    for (const c of saved.connected ?? []) {
      leases.push(await setupNetwork(root, {
        containerId: rec.id, containerName: rec.name, hostname: req.hostname, network: c.network, ip: c.ip, aliases: c.aliases, hostsFile: join(dir, 'hosts'),
      }, pid, { launcher: true, ...ownerOpt(owner) }));
    }
  } catch (err) {
    if (leases.length) await teardownNetwork(root, rec.id).catch(() => undefined); // the caller's cleanup would too; not twice the work
    throw err;
  }
  await writeFile(join(dir, 'network.json'), JSON.stringify({ ...saved, attachments: leases }, null, 2) + '\n');
  return leases.map(leaseVethRecord).join('');
}

/** Releases every network attachment of a container (veths, port rules, leases). Idempotent. */
export async function releaseNetwork(roots: EngineRoots, id: string): Promise<void> {
  await teardownNetwork(roots.root, id);
}

/** Resolves a container by full id, name or unique id prefix. */
async function findContainer(roots: EngineRoots, ref: string): Promise<ContainerRecord> {
  const containers = new ContainerStore(containersRoot(roots));
  const byName = await readlink(join(containers.dir, 'names', ref)).catch(() => undefined);
  const direct = byName ?? (/^[a-f0-9]{64}$/.test(ref) ? ref : undefined);
  if (direct) {
    const rec = await containers.get(direct);
    if (rec) return rec;
  }
  if (/^[a-f0-9]{3,63}$/.test(ref)) {
    const hits = (await containers.list()).filter((r) => r.id.startsWith(ref));
    if (hits.length === 1) return hits[0]!;
    if (hits.length > 1) throw fail('EINVAL', `multiple containers found with id prefix "${ref}": be more precise`);
  }
  throw fail('ENOTFOUND', `no such container: ${ref}`);
}

/** The host pid of a running container's init: from its record, or from a live lease. */
async function runningPid(roots: EngineRoots, rec: ContainerRecord): Promise<number> {
  const r = rec as ContainerRecord & { pid?: number };
  const leases = await containerLeases(roots.root, rec.id);
  const live = leases.find((l) => processStartTime(l.pid) === l.startTime);
  // After restarts by the monitor, the init it started last (the record catches up at reconcile), if it
  // is in the container's cgroup (its pid file has no start time: a reused pid is not the container).
  const restarted = (await monitorState(new ContainerStore(containersRoot(roots)).containerDir(rec.id)))?.pid;
  const inContainer = (p: number) => readFile(`/proc/${p}/cgroup`, 'utf8').then((c) => c.includes(rec.id), () => false);
  const pid = live?.pid ?? (r.pid !== undefined && processStartTime(r.pid) !== undefined ? r.pid
    : restarted !== undefined && await inContainer(restarted) ? restarted : r.pid);
  if (rec.state !== 'running' || pid === undefined || processStartTime(pid) === undefined) {
    throw fail('ESTATE', `container ${rec.name} is not running: connect and disconnect need a running container`);
  }
  return pid;
}

/** tspod network connect: adds an interface (eth1, …) on `network` to a running container. */
export async function connectContainer(roots: EngineRoots, ref: string, network: string, opts: { ip?: string; aliases?: string[] } = {}): Promise<Lease> {
  const rec = await findContainer(roots, ref);
  const choice = parseNetworkMode(network);
  if (choice.kind !== 'bridge') throw fail('EINVAL', `network connect: ${network} is not a bridge network`);
  const pid = await runningPid(roots, rec);
  const dir = new ContainerStore(containersRoot(roots)).containerDir(rec.id);
  const state = await readNetworkState(dir);
  if (state && state.mode !== undefined && ['none', 'host'].includes(state.mode)) {
    throw fail('EINVAL', `network connect: container ${rec.name} runs with --network ${state.mode}`);
  }
  // A detached container's lease is its monitor's, like its first one: it outlives restarts.
  const r = rec as ContainerRecord & { monitorPid?: number; monitorStart?: number; foreground?: boolean };
  const owner = !r.foreground && isAlive(r.monitorPid, r.monitorStart) ? { pid: r.monitorPid!, startTime: r.monitorStart! } : undefined;
  const lease = await setupNetwork(roots.root, {
    containerId: rec.id, containerName: rec.name, hostname: rec.id.slice(0, 12), network: choice.network,
    ip: opts.ip, aliases: opts.aliases, hostsFile: join(dir, 'hosts'),
  }, pid, ownerOpt(owner));
  if (state) {
    const connected = [...(state.connected ?? []).filter((c) => c.network !== choice.network), { network: choice.network, ip: opts.ip, aliases: opts.aliases }];
    await writeFile(join(dir, 'network.json'), JSON.stringify({ ...state, attachments: [...state.attachments, lease], connected }, null, 2) + '\n');
  }
  await editReplayedPlan(dir, (text) => text + leaseVethRecord(lease));
  return lease;
}

/**
 * The plan tspod-monitor replays for a restart (detached.ts), if the container has one: `edit` gets
 * and returns its text (the `veth` records follow its `end` line).
 */
async function editReplayedPlan(dir: string, edit: (text: string) => string): Promise<void> {
  let text: string;
  try {
    text = await readFile(planTextPath(dir), 'utf8');
  } catch {
    return;
  }
  await writeFileAtomic(planTextPath(dir), edit(text), 0o600);
}

/** tspod network disconnect: removes the container's interface on `network`. */
export async function disconnectContainer(roots: EngineRoots, ref: string, network: string): Promise<void> {
  const rec = await findContainer(roots, ref);
  const leases = await containerLeases(roots.root, rec.id);
  if (!leases.some((l) => l.network === network)) throw fail('ENOTFOUND', `container ${rec.name} is not connected to network ${network}`);
  const gone = leases.find((l) => l.network === network)!;
  await teardownNetwork(roots.root, rec.id, network);
  const dir = new ContainerStore(containersRoot(roots)).containerDir(rec.id);
  const state = await readNetworkState(dir);
  if (state) {
    await writeFile(join(dir, 'network.json'), JSON.stringify({
      ...state, attachments: state.attachments.filter((a) => a.network !== network), connected: (state.connected ?? []).filter((c) => c.network !== network),
    }, null, 2) + '\n');
  }
  await editReplayedPlan(dir, (text) => text.split('\n').filter((l) => !l.startsWith(`veth ${gone.hostVeth} `)).join('\n'));
}

/**
 * docker inspect's NetworkSettings for a container: its live attachments (the leases it holds now;
 * none once it has stopped, as in docker) and the mode it was created with.
 */
export async function networkSettings(roots: EngineRoots, id: string, dir: string): Promise<Record<string, unknown>> {
  const saved = await readNetworkState(dir);
  const leases = (await containerLeases(roots.root, id)).filter(leaseAlive);
  const first = leases[0];
  const ports: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const l of leases) for (const p of l.ports) (ports[`${p.containerPort}/${p.protocol}`] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
  return {
    NetworkMode: saved?.mode ?? 'none',
    Ports: ports,
    IPAddress: first?.ip ?? '',
    IPPrefixLen: first?.prefix ?? 0,
    Gateway: first?.gateway ?? '',
    MacAddress: first?.mac ?? '',
    Networks: Object.fromEntries(leases.map((l) => [l.network, {
      IPAddress: l.ip, IPPrefixLen: l.prefix, Gateway: l.gateway, MacAddress: l.mac, Aliases: l.aliases,
      Interface: l.ifname, HostInterface: l.hostVeth, Bridge: l.bridge,
    }])),
  };
}
