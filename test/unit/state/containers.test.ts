import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, readdirSync, existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerStore, type ContainerRecord } from '../../../src/state/containers.js';
import { isAlive, processStartTime, signalProcess } from '../../../src/state/proc.js';
import { TspodError } from '../../../src/util/errors.js';

let dir: string;
let store: ContainerStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tspod-containers-'));
  store = new ContainerStore(dir);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const rec = (id: string, name: string): ContainerRecord => ({ id, name, image: 'busybox', imageId: 'sha256:' + 'a'.repeat(64), created: new Date().toISOString(), state: 'created' });
const ID1 = 'abc1' + '0'.repeat(60);
const ID2 = 'abc2' + '0'.repeat(60);

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return err instanceof TspodError ? err.code : String(err);
  }
}

describe('ContainerStore.find', () => {
  it('finds by full id, name and unique prefix; ambiguous prefixes and unknown refs are errors', async () => {
    await store.create(rec(ID1, 'web'));
    await store.create(rec(ID2, 'db'));
    expect((await store.find(ID1)).name).toBe('web');
    expect((await store.find('db')).id).toBe(ID2);
    expect((await store.find('abc1')).id).toBe(ID1);
    expect(await code(store.find('abc'))).toBe('EINVAL');
    expect(await code(store.find('nope'))).toBe('ENOTFOUND');
    await expect(store.find('nope')).rejects.toThrow('no such container: nope');
  });

  it('prefers a name over an id prefix that happens to look like it', async () => {
    await store.create(rec(ID1, 'abc2'));
    await store.create(rec(ID2, 'other'));
    expect((await store.find('abc2')).id).toBe(ID1);
  });
});

describe('ContainerStore.lock', () => {
  it('serializes holders; a waiter whose container was removed meanwhile gets ENOTFOUND', async () => {
    await store.create(rec(ID1, 'web'));
    const first = await store.lock(ID1);
    expect(await store.tryLock(ID1)).toBeUndefined();
    const second = store.lock(ID1).then(() => 'got', (e) => (e as TspodError).code);
    await new Promise((r) => setTimeout(r, 30));
    await store.remove(first.rec);
    first.release();
    expect(await second).toBe('ENOTFOUND');
    expect(readdirSync(dir).filter((n) => n !== 'names')).toEqual([]);
    expect(existsSync(join(dir, 'names', 'web'))).toBe(false);
  });

  it('tryLock succeeds once the lock is free and returns the current record', async () => {
    await store.create(rec(ID1, 'web'));
    const a = await store.lock(ID1);
    a.release();
    const b = await store.tryLock(ID1);
    expect(b?.rec.name).toBe('web');
    b!.release();
  });
});

describe('ContainerStore.rename', () => {
  it('claims the new name and frees the old one; a taken name is refused', async () => {
    await store.create(rec(ID1, 'web'));
    await store.create(rec(ID2, 'db'));
    const r = await store.rename((await store.get(ID1))!, 'front');
    expect(r.name).toBe('front');
    expect((await store.find('front')).id).toBe(ID1);
    expect(await code(store.find('web'))).toBe('ENOTFOUND');
    expect(JSON.parse(readFileSync(join(dir, ID1, 'container.json'), 'utf8')).name).toBe('front');
    expect(await code(store.rename(r, 'db'))).toBe('EEXIST');
    expect(await code(store.rename(r, 'bad/name'))).toBe('EINVAL');
  });
});

describe('process identity', () => {
  it('knows this process by pid and start time, and refuses a wrong start time', () => {
    const start = processStartTime(process.pid);
    expect(start).toBeGreaterThan(0);
    expect(isAlive(process.pid, start)).toBe(true);
    expect(isAlive(process.pid, start! + 1)).toBe(false);
    expect(signalProcess(process.pid, start! + 1, 'SIGKILL')).toBe(false); // a reused pid is never signalled
    expect(isAlive(undefined, undefined)).toBe(false);
    expect(processStartTime(2 ** 22 + 7)).toBeUndefined();
  });
});

describe('ContainerStore.sweepIncomplete', () => {
  it('removes the directory of a create killed before its first record, once it is older than the grace; keeps records and young ones', async () => {
    await store.create(rec(ID1, 'web'));
    const killed = join(dir, ID2);
    mkdirSync(killed);
    writeFileSync(join(killed, '.container.json.1a2b.tmp'), '{"id":');
    expect(await store.sweepIncomplete()).toEqual([]); // just made: could be a create in progress
    const old = new Date(Date.now() - 120_000);
    utimesSync(killed, old, old);
    utimesSync(join(dir, ID1), old, old);
    expect(await store.sweepIncomplete()).toEqual([ID2]);
    expect(existsSync(killed)).toBe(false);
    expect((await store.find('web')).id).toBe(ID1);
  });
});
