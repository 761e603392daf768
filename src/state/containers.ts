/**
 * Container records: one directory per container under <root>/containers/<id>/ holding
 * container.json (written atomically) and the files bind-mounted into it (hosts, hostname,
 * resolv.conf). Names are unique: a name is claimed by creating <root>/containers/names/<name>
 * with O_EXCL, which is atomic across processes without a lock.
 */
import { readdir, rm, readlink, symlink, rename } from 'node:fs/promises';
import { closeSync, constants as fsc, existsSync, mkdirSync, openSync, readFileSync, readlinkSync, renameSync, rmSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { LOCK_EX, LOCK_NB, LOCK_UN, realSys, type Sys } from '../sys/index.js';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { readdirOrEmpty, writeFileAtomic, writeFileRenamed } from '../util/fs.js';
import { fail, isErrno } from '../util/errors.js';

export interface ContainerRecord {
  id: string;
  name: string;
  image: string;
  imageId: string;
  created: string;
  state: 'created' | 'running' | 'paused' | 'exited';
  exitCode?: number;
  oomKilled?: boolean;
  finished?: string;
  /** Why the last start failed, in one line (docker's State.Error); cleared by the next start. */
  error?: string;
  /** Detached life cycle (create/start/run -d), see src/container/README.md. */
  started?: string;
  /** Host pid of the container's init and its start time (field 22 of /proc/PID/stat). */
  pid?: number;
  pidStart?: number;
  /** The tspod-monitor of a detached container, same identity rule. */
  monitorPid?: number;
  monitorStart?: number;
  /** Cgroup.paths of the running container: reopened with driver.open(id, { paths }). */
  cgroupPaths?: string[];
  /** What `start` needs to create the cgroup again. */
  limits?: Record<string, number>;
  cgroupParent?: string;
  /** The command line the container runs (for ps and inspect). */
  path?: string;
  args?: string[];
  /** Set by stop/kill/rm so that the exit is not mistaken for a failure (and a restart policy ends). */
  stoppedByUser?: boolean;
  restartPolicy?: string;
  restartCount?: number;
  /** --label KEY=VALUE (issue 5). */
  labels?: Record<string, string>;
  /** --stop-signal (else the image's StopSignal), as a signal name, and --stop-timeout in seconds: for stop. */
  stopSignal?: string;
  stopTimeout?: number;
  /**
   * A foreground `run`: the CLI (monitorPid/monitorStart) owns the container from the first moment.
   * If that CLI dies (SIGKILL), the next command's reconcile releases what the run held.
   */
  foreground?: boolean;
  /** `run --rm`: removed entirely once it has exited, also when its CLI was killed. */
  autoRemove?: boolean;
  /**
   * docker inspect's Config and HostConfig fields as the container was created (src/container/inspect-config.ts);
   * absent in records written before they were kept.
   */
  config?: InspectConfigFields;
  hostConfig?: Record<string, unknown>;
}

/** docker's Config fields that come from the image and the run options (Tty, OpenStdin, Labels are kept elsewhere). */
export interface InspectConfigFields {
  Hostname: string;
  User: string;
  Env: string[] | null;
  Cmd: string[] | null;
  Entrypoint: string[] | null;
  WorkingDir: string;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export class ContainerStore {
  constructor(readonly dir: string) {}

  containerDir(id: string): string {
    return join(this.dir, id);
  }

  static newId(): string {
    return randomBytes(32).toString('hex');
  }

  /** Claims the name and writes the record; EEXIST naming the name when it is taken. */
  /**
   * Writes the record, then claims the name (a symlink names/NAME → id, made with O_EXCL semantics).
   * In that order a name link always points at a record that exists or existed: a link whose record
   * is gone was left by a crash (of remove, or of a create killed right after it claimed the name)
   * and is taken over. EEXIST naming the name when a live container holds it.
   */
  async create(rec: ContainerRecord): Promise<void> {
    if (!NAME_RE.test(rec.name)) throw fail('EINVAL', `invalid container name "${rec.name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    mkdirSync(join(this.dir, 'names'), { recursive: true }); // metadata calls of microseconds: no thread-pool hop
    mkdirSync(this.containerDir(rec.id), { recursive: true, mode: 0o700 });
    try {
      await this.save(rec);
      await this.claimName(rec);
    } catch (err) {
      await rm(this.containerDir(rec.id), { recursive: true, force: true });
      throw err;
    }
  }

  private async claimName(rec: ContainerRecord): Promise<void> {
    const link = join(this.dir, 'names', rec.name);
    for (let attempt = 0; ; attempt++) {
      try {
        await symlink(rec.id, link);
        return;
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
      }
      const owner = await readlink(link).catch(() => undefined);
      if (owner !== undefined && attempt < 2 && !(await this.get(owner))) {
        // Stale: its record is gone. Replace it atomically (rename over), then check we won.
        const tmp = `${link}.${rec.id.slice(0, 12)}.tmp`;
        await rm(tmp, { force: true });
        await symlink(rec.id, tmp);
        await rename(tmp, link);
        if ((await readlink(link).catch(() => undefined)) === rec.id) return;
        continue;
      }
      throw fail('EEXIST', `the container name "${rec.name}" is already in use by container ${(owner ?? '?').slice(0, 12)}`);
    }
  }

  /**
   * Writes the record atomically (temp file + rename: a reader or a SIGKILL sees the old record or
   * the new one) and, by default, durably (fsync of the file and the directory). `durable: false`
   * is for a state that exists only while this process lives and is superseded within milliseconds
   * by a durable save (a start in progress: cgroup made, monitor spawned): it matters after a SIGKILL,
   * which the rename covers, and not after a power loss, after which nothing of it runs and the last
   * durable state reconciles the same way. It replaces a durable record (never the first write).
   */
  async save(rec: ContainerRecord, opts: { durable?: boolean; syncFirst?: string[] } = {}): Promise<void> {
    const path = join(this.containerDir(rec.id), 'container.json');
    const text = JSON.stringify(rec, null, 2) + '\n';
    // syncFirst (durable only): files of the record's directory written by writeFileRenamed, made durable with it.
    if (opts.durable ?? true) return writeFileAtomic(path, text, 0o644, opts.syncFirst);
    return writeFileRenamed(path, text, 0o644);
  }

  async get(id: string): Promise<ContainerRecord | undefined> {
    try {
      // Synchronous: a record is a few hundred bytes in the page cache; readFile's open/stat/read/close are four
      // thread-pool round trips, paid for every record by ps, rm and the lock of every command.
      return JSON.parse(readFileSync(join(this.containerDir(id), 'container.json'), 'utf8')) as ContainerRecord;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  async list(): Promise<ContainerRecord[]> {
    const names = await readdirOrEmpty(this.dir);
    const out: ContainerRecord[] = [];
    for (const n of names) {
      if (!/^[a-f0-9]{64}$/.test(n)) continue;
      const rec = await this.get(n);
      if (rec) out.push(rec);
    }
    return out;
  }

  /**
   * Removes the directories of creates that were killed before their first record was written (create
   * makes the directory, then renames container.json into it): no record, and older than `graceMs`, so a
   * create in progress (milliseconds between the two) is never touched. Returns the ids removed.
   */
  async sweepIncomplete(graceMs = 60_000): Promise<string[]> {
    const out: string[] = [];
    for (const n of await readdirOrEmpty(this.dir)) {
      if (!/^[a-f0-9]{64}$/.test(n)) continue;
      const dir = this.containerDir(n);
      if (existsSync(join(dir, 'container.json'))) continue;
      const st = statSync(dir, { throwIfNoEntry: false });
      if (!st?.isDirectory() || Date.now() - st.mtimeMs < graceMs) continue;
      rmSync(dir, { recursive: true, force: true });
      out.push(n);
    }
    return out;
  }

  /**
   * Finds a container by full id, name, or unique id prefix (as docker does); ENOTFOUND naming
   * `ref` otherwise, EINVAL when a prefix is ambiguous.
   */
  async find(ref: string): Promise<ContainerRecord> {
    if (/^[a-f0-9]{64}$/.test(ref)) {
      const rec = await this.get(ref);
      if (rec) return rec;
    }
    if (NAME_RE.test(ref)) {
      const target = await readlink(join(this.dir, 'names', ref)).catch(() => undefined);
      const rec = target ? await this.get(target) : undefined;
      if (rec) return rec;
    }
    if (/^[a-f0-9]+$/.test(ref)) {
      const ids = (await readdir(this.dir).catch(() => [] as string[])).filter((n) => /^[a-f0-9]{64}$/.test(n) && n.startsWith(ref));
      if (ids.length > 1) throw fail('EINVAL', `multiple containers found with id prefix "${ref}": be more precise`);
      const rec = ids.length === 1 ? await this.get(ids[0]!) : undefined;
      if (rec) return rec;
    }
    throw fail('ENOTFOUND', `no such container: ${ref}`);
  }

  /**
   * Takes the container's lock: flock(2) on its directory, so concurrent commands on one container
   * serialize and the kernel frees the lock of a dead process. The directory vanishes with the
   * container: whoever waited then finds no record and reports the container gone (ENOTFOUND).
   * Returns the record as it is under the lock, and the release function.
   */
  async lock(id: string, sys: Sys = realSys()): Promise<{ rec: ContainerRecord; release: () => void }> {
    return (await this.lockIf(id, true, sys))!;
  }

  /**
   * find(ref), then lock() what it found. A container removed while this waited for its lock is
   * reported by `ref`, the reference the user gave, as when it was not there to begin with.
   */
  async findAndLock(ref: string): Promise<{ rec: ContainerRecord; release: () => void }> {
    const { id } = await this.find(ref);
    try {
      return await this.lock(id);
    } catch (err) {
      if (isErrno(err, 'ENOTFOUND')) throw fail('ENOTFOUND', `no such container: ${ref}`, err);
      throw err;
    }
  }

  /** lock() without waiting: undefined when another command holds the lock. */
  async tryLock(id: string, sys: Sys = realSys()): Promise<{ rec: ContainerRecord; release: () => void } | undefined> {
    return this.lockIf(id, false, sys);
  }

  private async lockIf(id: string, wait: boolean, sys: Sys): Promise<{ rec: ContainerRecord; release: () => void } | undefined> {
    let fd: number;
    try {
      fd = openSync(this.containerDir(id), fsc.O_RDONLY | fsc.O_DIRECTORY);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw fail('ENOTFOUND', `no such container: ${id}`);
      throw err;
    }
    let delay = 2;
    while (!sys.flock(fd, LOCK_EX | LOCK_NB)) {
      if (!wait) {
        closeSync(fd);
        return undefined;
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 50);
    }
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      try {
        sys.flock(fd, LOCK_UN);
      } finally {
        closeSync(fd);
      }
    };
    const rec = await this.get(id).catch((e) => { release(); throw e; });
    if (!rec) {
      release();
      throw fail('ENOTFOUND', `no such container: ${id}`);
    }
    return { rec, release };
  }

  /** Renames a container: claims the new name, then releases the old one. */
  async rename(rec: ContainerRecord, name: string): Promise<ContainerRecord> {
    if (!NAME_RE.test(name)) throw fail('EINVAL', `invalid container name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    try {
      await symlink(rec.id, join(this.dir, 'names', name));
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      throw fail('EEXIST', `the container name "${name}" is already in use`);
    }
    const next = { ...rec, name };
    await this.save(next);
    const old = join(this.dir, 'names', rec.name);
    if ((await readlink(old).catch(() => undefined)) === rec.id) await rm(old, { force: true });
    return next;
  }

  /** Removes the record and releases the name (record first: a crash leaves a dangling name link, which create() reports). */
  async remove(rec: Pick<ContainerRecord, 'id' | 'name'>): Promise<void> {
    // Rename first: a concurrent reader sees the record whole or not at all, never half deleted.
    // Synchronous: a record directory holds a dozen small files (and the log); fs.promises.rm's
    // recursive walk costs a thread-pool round trip per entry (≈ 3–4 ms of every `run --rm`).
    const doomed = join(this.dir, `.removing-${rec.id}`);
    try {
      renameSync(this.containerDir(rec.id), doomed);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    rmSync(doomed, { recursive: true, force: true });
    const link = join(this.dir, 'names', rec.name);
    let owner: string | undefined;
    try {
      owner = readlinkSync(link);
    } catch {
      owner = undefined;
    }
    if (owner === rec.id) rmSync(link, { force: true });
  }
}

/** A docker-style random name: adjective_surname. */
export function randomName(): string {
  const adjectives = ['admiring', 'brave', 'clever', 'dazzling', 'eager', 'festive', 'gallant', 'happy', 'jolly',
    'keen', 'lucid', 'modest', 'nifty', 'optimistic', 'peaceful', 'quirky', 'relaxed', 'serene', 'tender', 'vibrant'];
  const names = ['turing', 'hopper', 'lovelace', 'ritchie', 'thompson', 'torvalds', 'knuth', 'dijkstra', 'liskov',
    'hamilton', 'kay', 'lamport', 'mccarthy', 'noether', 'shannon', 'wozniak', 'pike', 'cerf', 'curie', 'babbage'];
  const pick = (a: string[]) => a[randomBytes(1)[0]! % a.length]!;
  return `${pick(adjectives)}_${pick(names)}`;
}

