// Container names: a name link left by a crash (its record gone) is taken over; a live one is not.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerStore, type ContainerRecord } from '../../../src/state/containers.js';

const rec = (id: string, name: string): ContainerRecord => ({ id, name, image: 'busybox', imageId: 'sha256:' + '0'.repeat(64), created: new Date(0).toISOString(), state: 'created' });

describe('container names after a crash', () => {
  const dirs: string[] = [];
  afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });
  const store = () => {
    const d = mkdtempSync(join(tmpdir(), 'tspod-names-'));
    dirs.push(d);
    return new ContainerStore(d);
  };

  it('takes over a name whose container has no record (a create or rm killed half-way)', async () => {
    const s = store();
    const dead = 'a'.repeat(64);
    mkdirSync(join(s.dir, 'names'), { recursive: true });
    mkdirSync(join(s.dir, dead)); // an empty container dir, as a killed create left it
    symlinkSync(dead, join(s.dir, 'names', 'web'));
    const id = 'b'.repeat(64);
    await s.create(rec(id, 'web'));
    expect(readlinkSync(join(s.dir, 'names', 'web'))).toBe(id);
    expect((await s.find('web')).id).toBe(id);
  });

  it('refuses a name a live container holds, naming it', async () => {
    const s = store();
    await s.create(rec('c'.repeat(64), 'db'));
    await expect(s.create(rec('d'.repeat(64), 'db'))).rejects.toThrow(/"db" is already in use by container cccccccccccc/);
    expect(await s.list()).toHaveLength(1);
  });
});
