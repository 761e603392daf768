import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fail } from '../../util/errors.js';
import { causeOf, realCgroupIo } from './io.js';
import { parseMountinfo, parseProcCgroup, type MountInfo } from './parse.js';
import type { CgroupDriver, CgroupIo } from './types.js';
import { V1Driver, type V1Hierarchy } from './v1.js';
import { V2Driver } from './v2.js';

/** The v1 controllers the kernel knows; a v1 mount of only name=… hierarchies has none. */
export const V1_CONTROLLERS = new Set([
  'cpuset', 'cpu', 'cpuacct', 'blkio', 'memory', 'devices', 'freezer', 'net_cls', 'perf_event',
  'net_prio', 'hugetlb', 'pids', 'rdma', 'misc', 'debug',
]);

export interface DetectOptions {
  /** Default /proc/self/mountinfo. */
  mountinfo?: string;
  /** Default /proc/self/cgroup. */
  selfCgroup?: string;
  /** A directory the mount points of `mountinfo` are resolved under (default "/"), for a fake cgroupfs in tests. */
  root?: string;
  /** Default: the real file system and process.kill. */
  io?: CgroupIo;
}

/** Where the caller's cgroup `path` lives below a mount whose root inside the hierarchy is `mountRoot`. */
function relativeToMount(path: string, mountRoot: string): string {
  if (mountRoot === '/' || mountRoot === '') return path;
  if (path === mountRoot) return '/';
  if (path.startsWith(mountRoot + '/')) return path.slice(mountRoot.length);
  return path; // a cgroup namespace: paths are already relative to its root
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

/**
 * Picks the driver from the mount table. Any v1 hierarchy with a real controller → v1 (legacy, or
 * hybrid where the cgroup2 mount is not used for controllers); else a cgroup2 mount → v2 (unified).
 * Groups nest under the caller's own cgroup in every hierarchy, read from /proc/self/cgroup.
 */
export function detectCgroups(opts: DetectOptions = {}): Promise<CgroupDriver> {
  // The host's answer is the same for the whole process (a command detects once per container it
  // touches: rm -f of 50 would read the mount table 50 times). A failure is not kept.
  if (opts.mountinfo === undefined && opts.selfCgroup === undefined && opts.root === undefined && opts.io === undefined) {
    hostDriver ??= detect({}).catch((err) => { hostDriver = undefined; throw err; });
    return hostDriver;
  }
  return detect(opts);
}
let hostDriver: Promise<CgroupDriver> | undefined;

async function detect(opts: DetectOptions): Promise<CgroupDriver> {
  const io = opts.io ?? realCgroupIo;
  const mountinfoPath = opts.mountinfo ?? '/proc/self/mountinfo';
  const selfPath = opts.selfCgroup ?? '/proc/self/cgroup';
  let mountText: string, selfText: string;
  try {
    mountText = await io.readFile(mountinfoPath);
  } catch (err) {
    throw fail('ESYS', `detect cgroups: read ${mountinfoPath}: ${causeOf(err)}`, err);
  }
  try {
    selfText = await io.readFile(selfPath);
  } catch (err) {
    throw fail('ESYS', `detect cgroups: read ${selfPath}: ${causeOf(err)}`, err);
  }
  const at = (m: MountInfo) => resolve(opts.root ? join(opts.root, m.mountPoint) : m.mountPoint);
  const mounts = parseMountinfo(mountText);
  const self = parseProcCgroup(selfText);

  const hierarchies: V1Hierarchy[] = [];
  const seen = new Set<string>();
  for (const m of mounts) {
    if (m.fsType !== 'cgroup') continue;
    const controllers = m.superOptions.filter((o) => V1_CONTROLLERS.has(o) || o.startsWith('name='));
    if (controllers.length === 0 || seen.has(m.dev)) continue;
    const line = self.find((l) => l.hierarchyId !== 0 && sameSet(l.controllers, controllers));
    if (!line) continue; // mounted but this process is not in it (should not happen)
    seen.add(m.dev);
    const mountPoint = at(m);
    hierarchies.push({ mountPoint, controllers, base: resolve(mountPoint, '.' + relativeToMount(line.path, m.root)) });
  }
  if (hierarchies.some((h) => h.controllers.some((c) => V1_CONTROLLERS.has(c)))) {
    return new V1Driver(io, hierarchies);
  }

  const v2 = mounts.filter((m) => m.fsType === 'cgroup2');
  const mount = v2.find((m) => m.mountPoint === '/sys/fs/cgroup') ?? v2[0];
  if (mount) {
    const line = self.find((l) => l.hierarchyId === 0 && l.controllers.length === 0);
    if (!line) throw fail('EUNSUPPORTED', `detect cgroups: ${selfPath} has no cgroup v2 line ("0::/path")`);
    const mountPoint = at(mount);
    return new V2Driver(io, mountPoint, resolve(mountPoint, '.' + relativeToMount(line.path, mount.root)));
  }
  throw fail('EUNSUPPORTED', `detect cgroups: no cgroup file system is mounted (read ${mountinfoPath})`);
}

/**
 * Takes the slow part of the coming cgroup migration ahead of time, in a thread-pool thread. Every
 * write to a cgroup.procs takes the kernel's cgroup_threadgroup_rwsem for writing, and the first
 * such write after a quiet moment waits for an RCU grace period (its rcu_sync, ≈ 10–15 ms here,
 * measured on these v1 hosts; v2 without favordynmods is the same); writes within about a grace
 * period of the last one do not wait. Writing this process's own pid into the cgroup it is already
 * in is a migration that changes nothing and pays that wait now, while the caller builds the plan
 * and starts the launcher, so that placing the container's init (addProcess) ≈ 10–30 ms later
 * finds the rwsem fast. Best effort: any error is ignored, and correctness never depends on it.
 */
export function prewarmAttach(): void {
  if (process.env.TSPOD_CGROUP_PREWARM === '0') return;
  void detectCgroups()
    .then((d) => {
      const own = d instanceof V1Driver ? d.hierarchies[0]?.base : d instanceof V2Driver ? d.base : undefined;
      return own === undefined ? undefined : writeFile(join(own, 'cgroup.procs'), String(process.pid), { flag: 'r+' });
    })
    .catch(() => {});
}
