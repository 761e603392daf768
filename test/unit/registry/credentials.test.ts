import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { mergeScopes, pullScopes, pushScopes } from '../../../src/registry/auth.js';
import {
  credentialFiles, eraseCredentials, lookupCredentials, normalizeAuthKey, storeCredentials,
} from '../../../src/registry/credentials.js';

const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});
function home(): string {
  const d = mkdtempSync(join(tmpdir(), 'tspod-creds-'));
  dirs.push(d);
  return d;
}
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('credentials files', () => {
  it('normalises keys as docker does', () => {
    expect(normalizeAuthKey('https://index.docker.io/v1/')).toBe('docker.io');
    expect(normalizeAuthKey('registry-1.docker.io')).toBe('docker.io');
    expect(normalizeAuthKey('http://Host:5000/v2/')).toBe('host:5000');
    expect(normalizeAuthKey('quay.io')).toBe('quay.io');
  });

  it('reads $REGISTRY_AUTH_FILE before docker config.json; auth, username/password and identitytoken', async () => {
    const h = home();
    const env = { HOME: h, REGISTRY_AUTH_FILE: join(h, 'auth.json') };
    expect(credentialFiles({ env })).toEqual([join(h, 'auth.json'), join(h, '.docker', 'config.json')]);
    mkdirSync(join(h, '.docker'));
    writeFileSync(join(h, '.docker', 'config.json'), JSON.stringify({ auths: {
      'https://index.docker.io/v1/': { auth: b64('hub:pw:with:colons') },
      'quay.io': { username: 'q', password: 'qpw' },
      'ghcr.io': { auth: b64('docker:dpw') },
      'idp.example': { identitytoken: 'refresh-1' },
    } }));
    writeFileSync(env.REGISTRY_AUTH_FILE, JSON.stringify({ auths: { 'ghcr.io': { auth: b64('containers:cpw') } } }));
    expect(await lookupCredentials('docker.io', { env })).toEqual({ username: 'hub', password: 'pw:with:colons' });
    expect(await lookupCredentials('quay.io', { env })).toEqual({ username: 'q', password: 'qpw' });
    expect(await lookupCredentials('ghcr.io', { env })).toEqual({ username: 'containers', password: 'cpw' });
    expect(await lookupCredentials('idp.example', { env })).toEqual({ username: '', password: '', identityToken: 'refresh-1' });
    expect(await lookupCredentials('nowhere.example', { env })).toBeUndefined();
  });

  it('names the file when it is not JSON', async () => {
    const h = home();
    const env = { HOME: h, REGISTRY_AUTH_FILE: join(h, 'auth.json') };
    writeFileSync(env.REGISTRY_AUTH_FILE, '{oops');
    await expect(lookupCredentials('x.io', { env })).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringContaining(env.REGISTRY_AUTH_FILE) });
  });

  it('asks credHelpers / credsStore programs over stdin (docker-credential-NAME get)', async () => {
    const h = home();
    const bin = join(h, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'docker-credential-fake'), '#!/bin/sh\nread url\ncase "$url" in\n' +
      '  reg.example) echo \'{"ServerURL":"reg.example","Username":"u","Secret":"s"}\' ;;\n' +
      '  tok.example) echo \'{"ServerURL":"tok.example","Username":"<token>","Secret":"refresh"}\' ;;\n' +
      '  *) echo "credentials not found in native keychain"; exit 1 ;;\nesac\n');
    chmodSync(join(bin, 'docker-credential-fake'), 0o755);
    const env = { HOME: h, DOCKER_CONFIG: join(h, 'd'), REGISTRY_AUTH_FILE: join(h, 'none.json'), PATH: `${bin}:${process.env.PATH}` };
    mkdirSync(env.DOCKER_CONFIG);
    writeFileSync(join(env.DOCKER_CONFIG, 'config.json'), JSON.stringify({ credsStore: 'fake' }));
    const saved = process.env.PATH;
    process.env.PATH = env.PATH;
    try {
      expect(await lookupCredentials('reg.example', { env })).toEqual({ username: 'u', password: 's' });
      expect(await lookupCredentials('tok.example', { env })).toEqual({ username: '', password: '', identityToken: 'refresh' });
      expect(await lookupCredentials('other.example', { env })).toBeUndefined();
      writeFileSync(join(env.DOCKER_CONFIG, 'config.json'), JSON.stringify({ credHelpers: { 'reg.example': 'missing-helper' } }));
      await expect(lookupCredentials('reg.example', { env })).rejects.toMatchObject({
        code: 'EAUTH', message: expect.stringContaining('docker-credential-missing-helper: not found') });
    } finally {
      process.env.PATH = saved;
    }
  });

  it('login stores base64 auth in a 0600 file keeping other keys; logout removes it', async () => {
    const h = home();
    const env = { HOME: h };
    const file = join(h, '.docker', 'config.json');
    mkdirSync(join(h, '.docker'));
    writeFileSync(file, JSON.stringify({ auths: { 'other.io': { auth: b64('a:b') } }, psFormat: 'x' }));
    expect(await storeCredentials('docker.io', { username: 'me', password: 'p@ss' }, { env })).toBe(file);
    const json = JSON.parse(readFileSync(file, 'utf8'));
    expect(json.psFormat).toBe('x');
    expect(json.auths['other.io']).toEqual({ auth: b64('a:b') });
    expect(json.auths['https://index.docker.io/v1/']).toEqual({ auth: b64('me:p@ss') });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await lookupCredentials('docker.io', { env })).toEqual({ username: 'me', password: 'p@ss' });
    expect(await eraseCredentials('index.docker.io', { env })).toBe(true);
    expect(await eraseCredentials('docker.io', { env })).toBe(false);
    expect(await lookupCredentials('docker.io', { env })).toBeUndefined();
    expect(JSON.parse(readFileSync(file, 'utf8')).auths['other.io']).toBeDefined();
  });
});

describe('scopes', () => {
  it('pull, and push with mount sources in one request', () => {
    expect(pullScopes('library/alpine')).toEqual(['repository:library/alpine:pull']);
    expect(pushScopes('me/app', ['library/alpine', 'me/app', 'library/alpine'])).toEqual([
      'repository:me/app:pull,push', 'repository:library/alpine:pull']);
    expect(mergeScopes(['repository:me/app:pull,push', 'repository:library/alpine:pull', 'repository:me/app:pull', 'registry:catalog:*']))
      .toEqual(['repository:me/app:pull,push', 'repository:library/alpine:pull', 'registry:catalog:*']);
  });
});
