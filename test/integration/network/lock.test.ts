// The host-wide network lock (src/runtime/network/store.ts): a waiter says which tspod process holds it,
// once it has waited 2 s, instead of waiting silently for up to 60 s. The lock is held by flock(1) here,
// a real other process, with the file naming it as a holding tspod names itself.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NETWORK_LOCK, NetworkStore } from '../../../src/runtime/network/store.js';
import { LOCK_EX, LOCK_NB, LOCK_UN, realSys } from '../../../src/sys/index.js';
import { firstReason, gated, haveCommand, isRoot } from '../../support/caps.js';
import { until } from '../../support/wait.js';

const reason = firstReason(isRoot(), haveCommand('flock'));

describe.skipIf(reason)(gated('network lock', reason), () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0).reverse()) c();
  });

  it('a waiter names the holder after 2 s, then gets the lock when it is released, and names itself', async () => {
    const holder = spawn('flock', ['--no-fork', '-x', NETWORK_LOCK, 'sleep', '30'], { stdio: 'ignore' }); // no fork: the pid is the holder
    cleanups.push(() => holder.kill('SIGKILL'));
    const fd = openSync(NETWORK_LOCK, 'r');
    cleanups.push(() => closeSync(fd));
    await until('flock(1) to hold the lock', () => {
      if (!realSys().flock(fd, LOCK_EX | LOCK_NB)) return true;
      realSys().flock(fd, LOCK_UN);
      return undefined;
    });
    writeFileSync(NETWORK_LOCK, `${holder.pid} network rm`);

    const said: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { said.push(String(chunk)); return true; });
    cleanups.push(() => spy.mockRestore());
    const root = mkdtempSync(join(tmpdir(), 'tspod-lock-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const started = Date.now();
    const got = new NetworkStore(root).locked(async () => readFileSync(NETWORK_LOCK, 'utf8'));
    await until('the waiting message', () => said.length > 0 || undefined, 10_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    expect(said).toEqual([`tspod: waiting for the network lock ${NETWORK_LOCK}, held by tspod process ${holder.pid} (network rm)\n`]);
    holder.kill('SIGKILL');
    expect((await got).startsWith(`${process.pid} `)).toBe(true); // the new holder wrote itself
    expect(spawnSync('flock', ['-n', NETWORK_LOCK, 'true']).status).toBe(0); // and released it
  });
});
