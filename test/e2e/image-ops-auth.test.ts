// Issue #8: push authenticates as pull does. A second real docker-registry behind a token server (see
// test/support/auth-registry.ts) grants anonymous pulls and everything to USER; the tspod CLI logs in with
// `tspod login` (credentials in a private REGISTRY_AUTH_FILE), commits, and pushes with a cross-repository mount.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startFixtureRegistry, type FixtureRegistry } from '../support/registry.js';
import { startAuthRegistry, haveAuthRegistryTools, USER, PASSWORD, type AuthRegistry } from '../support/auth-registry.js';
import { tspodEnv, type TspodEnv } from '../support/tspod.js';
import { isRoot, haveOverlay, firstReason } from '../support/caps.js';
import { mountsUnder, findCgroups } from '../support/leftovers.js';

const gate = firstReason(isRoot(), haveOverlay(), haveAuthRegistryTools());

describe.skipIf(gate)('push with registry authentication', () => {
  let fixture: FixtureRegistry;
  let auth: AuthRegistry;
  let t: TspodEnv;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    fixture = await startFixtureRegistry();
    auth = await startAuthRegistry('token');
    await auth.copyIn(`${fixture.host}/library/busybox:latest`, 'library/busybox:latest');
    t = tspodEnv({});
    env = { REGISTRY_AUTH_FILE: join(t.root, 'auth.json'), DOCKER_CONFIG: join(t.root, 'docker') };
  });

  afterAll(async () => {
    try {
      if (t) {
        expect(mountsUnder(t.root)).toEqual([]);
        const dir = join(t.root, 'containers');
        const ids = existsSync(dir) ? readdirSync(dir).filter((n) => /^[a-f0-9]{64}$/.test(n)) : [];
        expect(findCgroups((name) => ids.includes(name))).toEqual([]);
      }
    } finally {
      t?.cleanup();
      await auth?.stop();
      await fixture?.stop();
    }
  });

  it('is refused without credentials in one line, then pushes after login, mounting the base layer', async () => {
    const run = (args: string[], input?: string) => t.run(args, { env, input });
    const base = `${auth.host}/library/busybox:latest`;
    const target = `${auth.host}/team/app:v1`;
    expect((await run(['pull', '-q', base])).code).toBe(0); // anonymous pull is granted
    expect((await run(['run', '--network', 'none', '--name', 'a1', base, 'sh', '-c', 'echo authed > /authed'])).code).toBe(0);
    expect((await run(['commit', 'a1', target])).code).toBe(0);

    const anon = await run(['push', target]);
    expect(anon.code).toBe(1);
    expect(anon.stderr.trim().split('\n')).toHaveLength(1);
    expect(anon.stderr).toMatch(/^tspod: push .*team\/app.*(denied|unauthorized|credentials)/i);

    const login = await run(['login', '-u', USER, '--password-stdin', auth.host], PASSWORD + '\n');
    expect(login.code, login.stderr).toBe(0);
    const before = auth.tokenRequests.length;
    const p = await run(['push', target]);
    expect(p.stderr).toBe('');
    expect(p.code).toBe(0);
    expect(p.stdout).toMatch(/: Mounted from another repository\n/);
    const scopes = auth.tokenRequests.slice(before).flatMap((r) => r.scopes);
    expect(scopes).toContain('repository:team/app:pull,push');
    expect(scopes).toContain('repository:library/busybox:pull');
    expect(auth.tokenRequests.slice(before).every((r) => r.user === USER)).toBe(true);

    // a fresh store pulls it back with the same credentials and sees the change
    const t2 = tspodEnv({});
    try {
      const r = await t2.run(['run', '--network', 'none', '--rm', target, 'cat', '/authed'], { env });
      expect(r.stdout).toBe('authed\n');
    } finally {
      t2.cleanup();
    }
  });
});
