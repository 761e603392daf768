/**
 * Container records: one directory per container under <root>/containers/<id>/ holding
 * container.json (written atomically) and the files bind-mounted into it (hosts, hostname,
 * resolv.conf). Names are unique: a name is claimed by creating <root>/containers/names/<name>
 * with O_EXCL, which is atomic across processes without a lock.
 */
import { mkdir, readFile, readdir, rm, readlink, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeFileAtomic } from '../util/fs.js';
import { fail, isErrno } from '../util/errors.js';

export interface ContainerRecord {
  id: string;
  name: string;
  image: string;
  imageId: string;
  created: string;
  state: 'created' | 'running' | 'exited';
  exitCode?: number;
  oomKilled?: boolean;
  finished?: string;
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
  async create(rec: ContainerRecord): Promise<void> {
    if (!NAME_RE.test(rec.name)) throw fail('EINVAL', `invalid container name "${rec.name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    await mkdir(join(this.dir, 'names'), { recursive: true });
    try {
      await symlink(rec.id, join(this.dir, 'names', rec.name));
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      const owner = await readlink(join(this.dir, 'names', rec.name)).catch(() => '?');
      throw fail('EEXIST', `the container name "${rec.name}" is already in use by container ${owner.slice(0, 12)}`);
    }
    try {
      await mkdir(this.containerDir(rec.id), { recursive: true, mode: 0o700 });
      await this.save(rec);
    } catch (err) {
      await this.remove(rec);
      throw err;
    }
  }

  async save(rec: ContainerRecord): Promise<void> {
    await writeFileAtomic(join(this.containerDir(rec.id), 'container.json'), JSON.stringify(rec, null, 2) + '\n');
  }

  async get(id: string): Promise<ContainerRecord | undefined> {
    try {
      return JSON.parse(await readFile(join(this.containerDir(id), 'container.json'), 'utf8')) as ContainerRecord;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  async list(): Promise<ContainerRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
    const out: ContainerRecord[] = [];
    for (const n of names) {
      if (!/^[a-f0-9]{64}$/.test(n)) continue;
      const rec = await this.get(n);
      if (rec) out.push(rec);
    }
    return out;
  }

  /** Removes the record and releases the name (record first: a crash leaves a dangling name link, which create() reports). */
  async remove(rec: Pick<ContainerRecord, 'id' | 'name'>): Promise<void> {
    await rm(this.containerDir(rec.id), { recursive: true, force: true });
    const link = join(this.dir, 'names', rec.name);
    if ((await readlink(link).catch(() => undefined)) === rec.id) await rm(link, { force: true });
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

