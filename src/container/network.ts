/**
 * The network step of a container's life, for the run/start paths: validate the flags before
 * anything is claimed, write the etc files, attach at the launcher's onPid step (the init exists
 * in its own network namespace and waits, so user code never runs without its network), release
 * when the container ends. The work itself is in src/runtime/network/.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EngineRoots } from '../state/paths.js';
import type { ImageConfig } from '../oci/types.js';
import {
  checkDns, exposedPorts, parseAddHost, parseNetworkMode, parsePublish, reconcileNetworks, setupNetwork, teardownNetwork,
  writeEtcFiles, type EtcFiles, type Lease, type NetworkChoice, type NetworkState, type PortRequest,
} from '../runtime/network/index.js';
import { fail } from '../util/errors.js';

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

export interface ContainerNetwork {
  choice: NetworkChoice;
  /** What the plan builder needs: a new network namespace ('none', also for bridge) or the host's. */
  planMode: 'none' | 'host';
  etcFiles: EtcFiles;
  /** Attach the container's init (at onPid). */
  attach(pid: number): Promise<void>;
  /** Detach; idempotent. */
  release(): Promise<void>;
}

/** Checks the network flags (one clear error, before a name or a snapshot is claimed). */
export function checkNetworkOptions(opts: NetworkRunOptions): NetworkChoice {
  const choice = parseNetworkMode(opts.network);
  if (choice.kind === 'container') {
    throw fail('EUNSUPPORTED', `--network container:${choice.container}: joining another container's network namespace is not supported yet`);
  }
  const bridgeOnly = (flag: string, v: unknown) => {
    if (choice.kind !== 'bridge' && v) throw fail('EINVAL', `${flag} needs a bridge network (--network ${opts.network} has none)`);
  };
  bridgeOnly('-p/--publish', opts.publish?.length);
  bridgeOnly('-P/--publish-all', opts.publishAll);
  bridgeOnly('--ip', opts.ip);
  bridgeOnly('--network-alias', opts.networkAliases?.length);
  for (const p of opts.publish ?? []) parsePublish(p);
  for (const h of opts.addHosts ?? []) parseAddHost(h);
  checkDns({ dns: opts.dns, dnsSearch: opts.dnsSearch, dnsOptions: opts.dnsOptions });
  return choice;
}

/** Writes the etc files into the container directory `dir` and returns the attach/release pair. */
export async function prepareNetwork(args: {
  roots: EngineRoots; id: string; name: string; hostname: string; dir: string; config: ImageConfig; opts: NetworkRunOptions;
}): Promise<ContainerNetwork> {
  const { roots, id, name, hostname, dir, opts } = args;
  const choice = checkNetworkOptions(opts);
  const kind = choice.kind;
  const etcFiles = await writeEtcFiles(dir, hostname, kind, { dns: opts.dns, dnsSearch: opts.dnsSearch, dnsOptions: opts.dnsOptions, addHosts: opts.addHosts });
  const statePath = join(dir, 'network.json');
  const publish: PortRequest[] = [...(opts.publish ?? []).map(parsePublish), ...(opts.publishAll ? exposedPorts(args.config.config?.ExposedPorts) : [])];
  let attached = false;
  const save = (attachments: Lease[]) => writeFile(statePath, JSON.stringify({ mode: opts.network ?? 'bridge', attachments } satisfies NetworkState, null, 2) + '\n');
  await save([]);
  return {
    choice,
    planMode: kind === 'host' ? 'host' : 'none',
    etcFiles,
    async attach(pid) {
      if (choice.kind !== 'bridge') return;
      attached = true;
      const lease = await setupNetwork(roots.root, {
        containerId: id, containerName: name, hostname, network: choice.network, ip: opts.ip, publish,
        aliases: opts.networkAliases, hostsFile: etcFiles.hosts, addHosts: opts.addHosts,
      }, pid);
      await save([lease]);
    },
    async release() {
      if (!attached) return;
      attached = false;
      await teardownNetwork(roots.root, id);
    },
  };
}

export { reconcileNetworks, teardownNetwork };
