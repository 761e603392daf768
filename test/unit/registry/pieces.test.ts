import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import { parseChallenges } from '../../../src/registry/auth.js';
import { endpointsFor, isInsecure, isLoopbackHost, registryBaseUrl } from '../../../src/registry/endpoints.js';
import { parseRetryAfter, send, summarizeErrorBody } from '../../../src/registry/http.js';
import { TspodError } from '../../../src/util/errors.js';

describe('endpoints', () => {
  it('knows loopback hosts', () => {
    for (const h of ['localhost', 'localhost:5000', '127.0.0.1', '127.0.0.1:5000', '127.1.2.3:80', '[::1]:5000', '::1']) {
      expect(isLoopbackHost(h), h).toBe(true);
    }
    for (const h of ['docker.io', '128.0.0.1:5000', '10.0.0.1', 'localhost.example.com', '[::2]:5000']) {
      expect(isLoopbackHost(h), h).toBe(false);
    }
  });

  it('uses http for loopback and insecure registries, https otherwise; docker.io means registry-1.docker.io', () => {
    const config = { insecureRegistries: ['myhost:5000', 'anyport.example'] };
    expect(registryBaseUrl('docker.io', config)).toBe('https://registry-1.docker.io');
    expect(registryBaseUrl('127.0.0.1:5000', config)).toBe('http://127.0.0.1:5000');
    expect(registryBaseUrl('[::1]:5000', config)).toBe('http://[::1]:5000');
    expect(registryBaseUrl('myhost:5000', config)).toBe('http://myhost:5000');
    expect(registryBaseUrl('myhost:5001', config)).toBe('https://myhost:5001');
    expect(isInsecure('anyport.example:1234', config)).toBe(true);
    expect(registryBaseUrl('quay.io', config)).toBe('https://quay.io');
  });

  it('lists mirrors in order, then the registry', () => {
    const eps = endpointsFor('docker.io', {
      registryMirrors: { 'docker.io': ['http://127.0.0.1:5001/', 'https://m.example/v2'], 'quay.io': ['http://x'] },
    });
    expect(eps.map((e) => [e.base, e.mirror])).toEqual([
      ['http://127.0.0.1:5001', true],
      ['https://m.example', true],
      ['https://registry-1.docker.io', false],
    ]);
    expect(eps.every((e) => e.registry === 'docker.io')).toBe(true);
    expect(endpointsFor('ghcr.io', {}).map((e) => e.base)).toEqual(['https://ghcr.io']);
  });

  it('tries an insecure registry over https without verification first, then http; loopback is http only', () => {
    const config = { insecureRegistries: ['myhost:5000'], registryMirrors: { 'myhost:5000': ['https://myhost:5000/'] } };
    expect(endpointsFor('myhost:5000', config).map((e) => [e.base, e.mirror, e.tlsVerify ?? true, e.probe ?? false])).toEqual([
      ['https://myhost:5000', true, false, false],
      ['https://myhost:5000', false, false, true],
      ['http://myhost:5000', false, true, false],
    ]);
    expect(endpointsFor('127.0.0.1:5000', config).map((e) => e.base)).toEqual(['http://127.0.0.1:5000']);
  });
});

describe('WWW-Authenticate parsing', () => {
  it('parses bearer and basic challenges', () => {
    expect(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' } },
    ]);
    expect(parseChallenges('Basic realm="Registry Realm"')).toEqual([{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
    expect(parseChallenges('Negotiate, Basic realm="a, b", charset=UTF-8')).toEqual([
      { scheme: 'negotiate', params: {} },
      { scheme: 'basic', params: { realm: 'a, b', charset: 'UTF-8' } },
    ]);
    expect(parseChallenges('bearer realm="x\\"y"')).toEqual([{ scheme: 'bearer', params: { realm: 'x"y' } }]);
    expect(parseChallenges('')).toEqual([]);
    expect(parseChallenges('Bearer abc==')[0]!.scheme).toBe('bearer'); // token68: tolerated, terminates
  });
});

describe('http pieces', () => {
  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('1')).toBe(1000);
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:03 GMT', now)).toBe(3000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:27:00 GMT', now)).toBe(0);
  });

  it('summarises registry error bodies', () => {
    const s = (o: unknown) => summarizeErrorBody(Buffer.from(JSON.stringify(o)));
    expect(s({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] })).toEqual({ codes: ['MANIFEST_UNKNOWN'], text: 'manifest unknown' });
    expect(s({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] })!.text).toBe(
      'denied: requested access to the resource is denied',
    );
    expect(s({ errors: [] })).toBeUndefined();
    expect(summarizeErrorBody(Buffer.from('<html>'))).toBeUndefined();
  });

  /** A dispatcher that answers from a script, recording what it was asked. */
  function scripted(answers: { status: number; location?: string }[]) {
    const seen: { origin: string; path: string; headers: Record<string, string> }[] = [];
    const d = {
      async request(o: { origin: string; path: string; headers: Record<string, string> }) {
        seen.push({ origin: String(o.origin), path: o.path, headers: o.headers });
        const a = answers.shift()!;
        const body = new PassThrough();
        body.end();
        return { statusCode: a.status, headers: a.location ? { location: a.location } : {}, body };
      },
    };
    return { dispatcher: d as unknown as Dispatcher, seen };
  }

  it('sends Authorization only to the registry origin across redirects', async () => {
    const { dispatcher, seen } = scripted([{ status: 302, location: '/other' }, { status: 307, location: 'https://cdn.example/x?s=1' }, { status: 200 }]);
    const res = await send(dispatcher, new URL('https://reg.example/v2/a/blobs/x'), {
      headers: { range: 'bytes=5-' },
      authorization: 'Bearer t',
      authOrigin: 'https://reg.example',
    });
    expect(res.status).toBe(200);
    expect(res.url.href).toBe('https://cdn.example/x?s=1');
    expect(seen.map((s) => [s.origin, s.path, s.headers.authorization, s.headers.range])).toEqual([
      ['https://reg.example', '/v2/a/blobs/x', 'Bearer t', 'bytes=5-'],
      ['https://reg.example', '/other', 'Bearer t', 'bytes=5-'],
      ['https://cdn.example', '/x?s=1', undefined, 'bytes=5-'],
    ]);
  });

  it('refuses a redirect from https to http and redirect loops', async () => {
    const { dispatcher } = scripted([{ status: 302, location: 'http://cdn.example/x' }]);
    const err = await send(dispatcher, new URL('https://reg.example/v2/a'), { headers: {} }).catch((e) => e);
    expect(err).toBeInstanceOf(TspodError);
    expect(err.message).toMatch(/refusing redirect from https to http/);
    const loop = scripted(Array.from({ length: 20 }, () => ({ status: 302, location: '/again' })));
    const err2 = await send(loop.dispatcher, new URL('http://reg.example/v2/a'), { headers: {} }).catch((e) => e);
    expect(err2.message).toMatch(/too many redirects/);
  });
});

describe('module boundaries', () => {
  it('no registry/oci/reference/config module imports undici at run time, or store/ or unpack/', () => {
    const root = join(import.meta.dirname, '../../../src');
    for (const dir of ['registry', 'oci', 'reference', 'config']) {
      for (const f of readdirSync(join(root, dir)).filter((n) => n.endsWith('.ts'))) {
        const text = readFileSync(join(root, dir, f), 'utf8');
        const imports = [...text.matchAll(/^import\s+(?!type\b)[^;]*?from\s+'([^']+)'/gm)].map((m) => m[1]);
        expect(imports, `${dir}/${f}`).not.toContain('undici');
        for (const i of imports) expect(i, `${dir}/${f}`).not.toMatch(/(^|\/)(store|unpack)\//);
      }
    }
  });
});
