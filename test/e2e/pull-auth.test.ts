// tspod login / pull / logout against real docker-registry instances with authentication: token auth
// with real JWTs from a token server in the test support code, and htpasswd Basic auth.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstReason, isRoot } from '../support/caps.js';
import { haveAuthRegistryTools, PASSWORD, REFRESH_TOKEN, startAuthRegistry, USER, type AuthRegistry } from '../support/auth-registry.js';
import { FIXTURE_IMAGES, repoRoot, startFixtureRegistry, type FixtureRegistry } from '../support/registry.js';
import { TSPOD_BIN, tspodEnv, type TspodEnv } from '../support/tspod.js';
import { spawn } from 'node:child_process';

const gate = firstReason(isRoot(), haveAuthRegistryTools());

for (const mode of ['token', 'htpasswd'] as const) {
  describe.skipIf(gate)(`login and pull with ${mode} auth on a real docker-registry`, () => {
    let fixture: FixtureRegistry;
    let reg: AuthRegistry;
    let t: TspodEnv;
    let home: string;
    let authFile: string;
    const env = () => ({ HOME: home, REGISTRY_AUTH_FILE: authFile, DOCKER_CONFIG: join(home, '.docker') });

    beforeAll(async () => {
      fixture = await startFixtureRegistry();
      reg = await startAuthRegistry(mode);
      await reg.copyIn(`${fixture.host}/${FIXTURE_IMAGES.busybox}`, 'library/busybox:latest');
      await reg.copyIn(`${fixture.host}/${FIXTURE_IMAGES.busybox}`, 'private/busybox:latest');
      t = tspodEnv();
      mkdirSync(join(repoRoot(), '.tspod-test'), { recursive: true });
      home = mkdtempSync(join(repoRoot(), '.tspod-test', `home-${mode}-`));
      authFile = join(home, 'auth.json');
    });

    afterAll(async () => {
      t?.cleanup();
      if (home) rmSync(home, { recursive: true, force: true });
      await reg?.stop();
      await fixture?.stop();
    });

    const tspod = (args: string[], input?: string) => t.run(args, { env: env(), ...(input !== undefined ? { input } : {}) });

    if (mode === 'token') {
      it('pulls a public repository anonymously with a token', async () => {
        const r = await tspod(['pull', `${reg.host}/library/busybox`]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expect(r.stdout).toMatch(/^Digest: sha256:[0-9a-f]{64}$/m);
        const anon = reg.tokenRequests.filter((q) => q.user === undefined);
        expect(anon.some((q) => q.scopes.includes('repository:library/busybox:pull'))).toBe(true);
      });
    }

    it('refuses a private repository without credentials, with one clear line', async () => {
      const r = await tspod(['pull', `${reg.host}/private/busybox`]);
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`^tspod: pull ${reg.host}/private/busybox:latest: `));
    });

    it('login with a wrong password fails, stores nothing and never echoes the password', async () => {
      const r = await tspod(['login', '-u', USER, '--password-stdin', reg.host], 'wrong-password-xyz\n');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(new RegExp(`^tspod: login ${reg.host}: .*refused the credentials`));
      expect(r.stderr + r.stdout).not.toContain('wrong-password-xyz');
      expect(existsSync(authFile)).toBe(false);
    });

    it('login verifies then stores; the private repository pulls; logout removes the login', async () => {
      const r = await tspod(['login', '-u', USER, '--password-stdin', reg.host], PASSWORD + '\n');
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('Login Succeeded\n');
      expect(r.code).toBe(0);
      expect(statSync(authFile).mode & 0o777).toBe(0o600);
      const stored = JSON.parse(readFileSync(authFile, 'utf8'));
      expect(Buffer.from(stored.auths[reg.host].auth, 'base64').toString()).toBe(`${USER}:${PASSWORD}`);

      const p = await tspod(['pull', `${reg.host}/private/busybox`]);
      expect(p.stderr).toBe('');
      expect(p.code).toBe(0);
      expect(p.stdout.trim().split('\n').at(-1)).toBe(`${reg.host}/private/busybox:latest`);
      if (mode === 'token') expect(reg.tokenRequests.some((q) => q.user === USER && q.scopes.includes('repository:private/busybox:pull'))).toBe(true);

      const o = await tspod(['logout', reg.host]);
      expect(o.code).toBe(0);
      expect(o.stdout).toBe(`Removing login credentials for ${reg.host}\n`);
      expect(JSON.parse(readFileSync(authFile, 'utf8')).auths[reg.host]).toBeUndefined();
      await tspod(['rmi', `${reg.host}/private/busybox`]);
      const again = await tspod(['pull', `${reg.host}/private/busybox`]);
      expect(again.code).not.toBe(0);
    });

    it('refuses -p without echoing it, and asks on a terminal with the echo off', async () => {
      rmSync(authFile, { force: true });
      const p = await tspod(['login', '-u', USER, '-p', 'visible-secret-123', reg.host]);
      expect(p.code).not.toBe(0);
      expect(p.stderr).toMatch(/--password-stdin/);
      expect(p.stderr + p.stdout).not.toContain('visible-secret-123');
      expect(existsSync(authFile)).toBe(false);

      // script(1) gives tspod a pseudo-terminal; the answers are typed once the prompts are up
      const out = await new Promise<{ status: number | null; stdout: string }>((resolve, reject) => {
        const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(TSPOD_BIN)} login ${reg.host}`;
        const c = spawn('script', ['-qfec', cmd, '/dev/null'], { env: { ...t.env, ...env() }, stdio: ['pipe', 'pipe', 'inherit'] });
        let stdout = '';
        let typed = 0;
        c.stdout.setEncoding('utf8').on('data', (d: string) => {
          stdout += d;
          if (typed === 0 && stdout.includes('Username: ')) { typed = 1; c.stdin.write(`${USER}\n`); }
          if (typed === 1 && stdout.includes('Password: ')) { typed = 2; c.stdin.write(`${PASSWORD}\n`); }
        });
        const timer = setTimeout(() => c.kill('SIGKILL'), 60_000);
        c.once('error', reject);
        c.once('close', (status) => { clearTimeout(timer); resolve({ status, stdout }); });
      });
      expect(out.status).toBe(0);
      expect(out.stdout).toContain('Login Succeeded');
      expect(out.stdout).not.toContain(PASSWORD);
      const stored = JSON.parse(readFileSync(authFile, 'utf8'));
      expect(Buffer.from(stored.auths[reg.host].auth, 'base64').toString()).toBe(`${USER}:${PASSWORD}`);
      await tspod(['logout', reg.host]);
    });

    it('reads docker config.json: a credential helper, then an auth entry', async () => {
      const docker = join(home, '.docker');
      mkdirSync(docker, { recursive: true });
      const bin = join(home, 'bin');
      mkdirSync(bin, { recursive: true });
      // a real docker-credential-* program speaking the helper protocol (stdin: server URL → JSON)
      const helper = join(bin, 'docker-credential-tspodtest');
      writeFileSync(helper, `#!/bin/sh\n[ "$1" = get ] || exit 1\nread url\n[ "$url" = "${reg.host}" ] || { echo "credentials not found in native keychain"; exit 1; }\n` +
        `printf '{"ServerURL":"%s","Username":"${USER}","Secret":"${PASSWORD}"}' "$url"\n`);
      chmodSync(helper, 0o755);
      writeFileSync(join(docker, 'config.json'), JSON.stringify({ credHelpers: { [reg.host]: 'tspodtest' } }));
      const noAuthFile = { HOME: home, DOCKER_CONFIG: docker, REGISTRY_AUTH_FILE: join(home, 'none.json'), PATH: `${bin}:${process.env.PATH}` };
      await t.run(['rmi', `${reg.host}/private/busybox`], { env: noAuthFile });
      const viaHelper = await t.run(['pull', `${reg.host}/private/busybox`], { env: noAuthFile });
      expect(viaHelper.stderr).toBe('');
      expect(viaHelper.code).toBe(0);

      writeFileSync(join(docker, 'config.json'), JSON.stringify({ auths: { [`http://${reg.host}/v1/`]: { username: USER, password: PASSWORD } } }));
      await t.run(['rmi', `${reg.host}/private/busybox`], { env: noAuthFile });
      const viaAuths = await t.run(['pull', `${reg.host}/private/busybox`], { env: noAuthFile });
      expect(viaAuths.stderr).toBe('');
      expect(viaAuths.code).toBe(0);
    });

    if (mode === 'token') {
      it('exchanges an identity token (OAuth2 refresh token) for access', async () => {
        writeFileSync(authFile, JSON.stringify({ auths: { [reg.host]: { identitytoken: REFRESH_TOKEN } } }));
        await tspod(['rmi', `${reg.host}/private/busybox`]);
        const r = await tspod(['pull', `${reg.host}/private/busybox`]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expect(reg.tokenRequests.some((q) => q.method === 'POST' && q.user === USER)).toBe(true);
      });
    }
  });
}
