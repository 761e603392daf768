/**
 * Network definitions and address leases, under <root>/networks/:
 *   <name>.json     one user-defined network (the default network "bridge" is not stored: it comes
 *                   from the engine config, see config.ts)
 *   leases.json     every address in use: network, ip, container, host veth, init pid + start time,
 *                   published ports. Written atomically; the only source of truth for IPAM.
 * A host-wide flock (/run/lock/tspod-network.lock) is held for every change of the above AND of the
 * host objects they describe (bridges, veths, nftables rules), so two tspod processes never race.
 * A lease is live while its owner (the container's init, or a detached container's monitor: pid +
 * start time from /proc/PID/stat) exists; a lease whose owner is gone is stale, and reconcile()
 * cleans it (a SIGKILLed tspod cannot leak one).
 *
 * The files are small and read and written under the lock with synchronous calls: an asynchronous
 * one costs a thread-pool round trip and an event-loop turn (≈ 0.5–1 ms each on a busy host, a dozen
 * of them per container start and stop), a synchronous one tens of microseconds, and the lock is
 * held for less time.
 */
import { closeSync, constants as fsc, existsSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LOCK_EX, LOCK_NB, LOCK_UN, realSys } from '../../sys/index.js';
import { writeFileAtomic } from '../../util/fs.js';
import { fail, isErrno, messageOf } from '../../util/errors.js';

export interface NetworkDef {
  name: string;
  id: string;
  driver: 'bridge';
  /** Host bridge interface name. */
  bridge: string;
  subnet: string;
  gateway: string;
  created: string;
  /** The default network (from the engine config, not stored). */
  builtin?: boolean;
}

export interface PortMapping {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

export interface Lease {
  network: string;
  bridge: string;
  ip: string;
  prefix: number;
  gateway: string;
  mac: string;
  containerId: string;
  containerName: string;
  /** Interface name inside the container (eth0, eth1…) and its host-side peer. */
  ifname: string;
  hostVeth: string;
  /** Host pid of the container's init and its start time (field 22 of /proc/PID/stat). */
  pid: number;
  startTime: string;
  /**
   * The process whose life keeps the lease, when it is not the init: a detached container's
   * tspod-monitor, so that the lease (and the veth the monitor re-creates) outlives the restarts
   * of its --restart policy.
   */
  ownerPid?: number;
  ownerStart?: string;
  ports: PortMapping[];
  /** Names other containers on the network resolve to this address (user-defined networks). */
  aliases: string[];
  /** The container's /etc/hosts on the host (peers on a user-defined network are listed in it). */
  hostsFile?: string;
}

/** "tspod PID (COMMAND)" as the holder of the lock open on `fd` wrote itself, or "another tspod process". */
function lockHolder(fd: number): string {
  try {
    const buf = Buffer.alloc(256);
    const text = buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString('utf8').trim();
    const [pid, ...command] = text.split(' ');
    if (pid && /^\d+$/.test(pid) && existsSync(`/proc/${pid}`)) return `tspod process ${pid}${command.length ? ` (${command.join(' ')})` : ''}`;
  } catch {
    // unreadable: say less
  }
  return 'another tspod process';
}

/**
 * The network lock as held by NetworkStore.locked. `fd` may be handed to a child process (as one of
 * its descriptors) that goes on holding the lock after this process has let go: flock belongs to the
 * open file, which stays locked until every descriptor of it is closed. Whoever does that calls
 * share() first, so that locked() only closes its descriptor instead of unlocking.
 */
export interface NetworkLock {
  readonly fd: number;
  share(): void;
}

/** Who holds the lock open on `fd`, for a waiter's message (lockHolder): a few bytes in the lock file (this boot's state only). */
export function writeLockHolder(fd: number, pid: number, what: string): void {
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, `${pid} ${what}`.slice(0, 200), 0);
  } catch {
    // a message's detail: never a reason to fail
  }
}

/** The host-wide network lock (see NetworkStore.locked). */
export const NETWORK_LOCK = '/run/lock/tspod-network.lock';

export function networksDir(root: string): string {
  return join(root, 'networks');
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function checkNetworkName(name: string): void {
  if (!NAME_RE.test(name) || name.length > 64) {
    throw fail('EINVAL', `invalid network name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-], at most 64 characters`);
  }
}

export class NetworkStore {
  readonly dir: string;
  constructor(root: string) {
    this.dir = networksDir(root);
  }

  async listDefs(): Promise<NetworkDef[]> {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
    const out: NetworkDef[] = [];
    for (const n of names.sort()) {
      if (!n.endsWith('.json') || n === 'leases.json') continue;
      out.push(JSON.parse(readFileSync(join(this.dir, n), 'utf8')) as NetworkDef);
    }
    return out;
  }

  async getDef(name: string): Promise<NetworkDef | undefined> {
    try {
      return JSON.parse(readFileSync(join(this.dir, `${name}.json`), 'utf8')) as NetworkDef;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  async saveDef(def: NetworkDef): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(join(this.dir, `${def.name}.json`), JSON.stringify(def, null, 2) + '\n');
  }

  async removeDef(name: string): Promise<void> {
    await rm(join(this.dir, `${name}.json`), { force: true });
  }

  async leases(): Promise<Lease[]> {
    try {
      return (JSON.parse(readFileSync(join(this.dir, 'leases.json'), 'utf8')) as { leases: Lease[] }).leases;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      // Only a host crash can leave the file torn (see saveLeases), and then every lease is stale:
      // their processes, veths and bridges are gone with the boot.
      if (err instanceof SyntaxError) return [];
      throw fail('EINTERNAL', `read ${join(this.dir, 'leases.json')}: ${messageOf(err)}`, err);
    }
  }

  /**
   * Replaces leases.json atomically (temporary file + rename: a SIGKILL leaves the old or the new
   * list) but without fsync: leases describe the processes and host objects of this boot only, so a
   * list a power loss would lose is stale by then anyway. Saves two fsyncs at every start and stop.
   */
  async saveLeases(leases: Lease[]): Promise<void> {
    replaceFile(join(this.dir, 'leases.json'), JSON.stringify({ leases }, null, 2) + '\n');
  }

  /**
   * Runs `fn` holding the network lock (flock: the kernel releases it if this process dies). The
   * lock is host-wide, not per data root: bridges, veths and the nftables table are host objects
   * that tspod instances with different roots may share (the default bridge tspod0 above all).
   */
  async locked<T>(fn: (lock: NetworkLock) => Promise<T>): Promise<T> {
    const path = NETWORK_LOCK;
    let fd: number;
    try {
      fd = openSync(path, fsc.O_RDWR | fsc.O_CREAT, 0o600);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      mkdirSync(dirname(path), { recursive: true });
      fd = openSync(path, fsc.O_RDWR | fsc.O_CREAT, 0o600);
    }
    const sys = realSys();
    try {
      let delay = 2;
      const started = Date.now();
      let told = false;
      while (!sys.flock(fd, LOCK_EX | LOCK_NB)) {
        if (Date.now() - started > 60_000) throw fail('EBUSY', `lock networks ${path}: held for 60 s by ${lockHolder(fd)}`);
        if (!told && Date.now() - started > 2_000) {
          told = true;
          process.stderr.write(`tspod: waiting for the network lock ${path}, held by ${lockHolder(fd)}\n`);
        }
        await sleep(delay);
        delay = Math.min(delay * 2, 50);
      }
      writeLockHolder(fd, process.pid, process.argv.slice(2, 4).join(' '));
      let shared = false;
      const lock: NetworkLock = { fd, share: () => { shared = true; } };
      try {
        return await fn(lock);
      } finally {
        // A child holding the lock on this descriptor's open file (see NetworkLock) keeps it: closing
        // is all this process does then, as LOCK_UN would release it for the child too.
        if (!shared) sys.flock(fd, LOCK_UN);
      }
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * Addresses in use on each bridge by every tspod instance on the host (any data root), so that two
 * roots sharing a bridge never hand out the same address: /run/lock/tspod-network.claims.json,
 * changed only under the host-wide lock. A claim whose process is gone is void.
 */
export interface Claim {
  bridge: string;
  ip: string;
  pid: number;
  startTime: string;
}

const CLAIMS = '/run/lock/tspod-network.claims.json';

export async function liveClaims(): Promise<Claim[]> {
  try {
    return (JSON.parse(readFileSync(CLAIMS, 'utf8')) as Claim[]).filter(leaseAlive);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || err instanceof SyntaxError) return [];
    throw err;
  }
}

export async function saveClaims(claims: Claim[]): Promise<void> {
  if (claims.length === 0) rmSync(CLAIMS, { force: true });
  else replaceFile(CLAIMS, JSON.stringify(claims) + '\n'); // under /run: gone with the boot anyway
}

/** Atomic replacement without fsync (see NetworkStore.saveLeases); creates the directory when missing. */
function replaceFile(path: string, data: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    try {
      writeFileSync(tmp, data, { flag: 'wx', mode: 0o644 });
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(tmp, data, { flag: 'wx', mode: 0o644 });
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Start time of a process (clock ticks since boot), or undefined when it does not exist. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces and parentheses: split after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function leaseAlive(l: Pick<Lease, 'pid' | 'startTime' | 'ownerPid' | 'ownerStart'>): boolean {
  if (l.ownerPid !== undefined) return processStartTime(l.ownerPid) === l.ownerStart;
  return processStartTime(l.pid) === l.startTime;
}

/** The claim (store.ts Claim) a lease holds: its owner's pid and start time. */
export function claimOf(l: Lease): Claim {
  return l.ownerPid !== undefined
    ? { bridge: l.bridge, ip: l.ip, pid: l.ownerPid, startTime: l.ownerStart ?? '' }
    : { bridge: l.bridge, ip: l.ip, pid: l.pid, startTime: l.startTime };
}
