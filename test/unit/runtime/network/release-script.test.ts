// The detached releaser's script (bridge.ts RELEASE_SCRIPT), run by sh with fake `ip` and `nft` programs that
// record their arguments and succeed or fail: the releasing marker is removed only when the link is gone
// and nft succeeded, so a failed step is found and redone (and reported) by the next network command.
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RELEASE_SCRIPT } from '../../../../src/runtime/network/bridge.js';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

/** Runs the script with `ip` and `nft` exiting with the given statuses; returns what they were asked and whether the marker is left. */
function release(bridge: string, nftScript: string, status: { ip: number; nft: number }, veths: string[] = []) {
  const dir = mkdtempSync(join(tmpdir(), 'tspod-release-'));
  dirs.push(dir);
  for (const tool of ['ip', 'nft'] as const) {
    writeFileSync(join(dir, tool), `#!/bin/sh\necho "${tool} $*" >> "${dir}/calls"\n[ "$1" != -f ] || sed 's/^/  /' >> "${dir}/calls"\nexit ${status[tool]}\n`);
    chmodSync(join(dir, tool), 0o755);
  }
  const marker = join(dir, 'releasing');
  writeFileSync(marker, '');
  const r = spawnSync('/bin/sh', ['-c', RELEASE_SCRIPT, 'tspod-network-release', bridge, nftScript, marker, ...veths],
    { env: { PATH: `${dir}:/usr/bin:/bin` }, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  const calls = existsSync(join(dir, 'calls')) ? readFileSync(join(dir, 'calls'), 'utf8').split('\n').filter(Boolean).sort() : [];
  return { calls, markerLeft: existsSync(marker) };
}

// "lo" always exists: a failed `ip link del` of it leaves the link, as a real failure would; "tspodgone0" never does.
describe('the releaser script', () => {
  it('deletes the link and runs the nft script, then removes the marker', () => {
    expect(release('tspodgone0', 'delete table ip tspod\n', { ip: 0, nft: 0 })).toEqual({
      calls: ['  delete table ip tspod', 'ip link del dev tspodgone0', 'nft -f -'], markerLeft: false,
    });
  });

  it('keeps the marker when nft fails', () => {
    expect(release('tspodgone0', 'delete table ip tspod\n', { ip: 0, nft: 1 }).markerLeft).toBe(true);
  });

  it('keeps the marker when the link is still there after a failed ip', () => {
    expect(release('lo', '', { ip: 1, nft: 0 }).markerLeft).toBe(true);
  });

  it('is content with a failed ip when the link is gone anyway, and runs no nft without a script (iptables)', () => {
    expect(release('tspodgone0', '', { ip: 1, nft: 0 })).toEqual({ calls: ['ip link del dev tspodgone0'], markerLeft: false });
  });

  it('deletes the leaving veths that are still there, only those', () => {
    expect(release('tspodgone0', '', { ip: 0, nft: 0 }, ['lo', 'tspodgone1']).calls).toEqual(['ip link del dev lo', 'ip link del dev tspodgone0']);
  });
});
