import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEngineConfig } from '../../../src/config/index.js';
import { rejection } from '../../support/errors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tspod-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, text: string): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, text);
  return p;
}

describe('loadEngineConfig', () => {
  it('returns defaults without TSPOD_CONFIG', async () => {
    expect(await loadEngineConfig({})).toEqual({});
    expect(await loadEngineConfig({ TSPOD_CONFIG: '' })).toEqual({});
  });

  it('reads mirrors and insecure registries, ignoring unknown keys', async () => {
    const p = await file(
      'ok.json',
      JSON.stringify({
        registryMirrors: { 'docker.io': ['http://127.0.0.1:5000/', 'https://mirror.example'] },
        insecureRegistries: ['myhost:5000', 'other'],
        somethingNew: { x: 1 },
      }),
    );
    expect(await loadEngineConfig({ TSPOD_CONFIG: p })).toEqual({
      registryMirrors: { 'docker.io': ['http://127.0.0.1:5000', 'https://mirror.example'] },
      insecureRegistries: ['myhost:5000', 'other'],
    });
  });

  it('EINVAL naming the file when it is missing', async () => {
    const p = join(dir, 'absent.json');
    const e = await rejection(loadEngineConfig({ TSPOD_CONFIG: p }));
    expect(e.code).toBe('EINVAL');
    expect(e.message).toBe(`load engine config ${p}: no such file`);
  });

  const invalid: [string, string, RegExp][] = [
    ['notjson', '{', /invalid JSON/],
    ['array', '[]', /want a JSON object/],
    ['mirrors-array', '{"registryMirrors": []}', /registryMirrors: want an object/],
    ['mirrors-string', '{"registryMirrors": {"docker.io": "http://x"}}', /registryMirrors\["docker.io"\]: want an array/],
    ['mirror-no-scheme', '{"registryMirrors": {"docker.io": ["127.0.0.1:5000"]}}', /must start with http/],
    ['mirror-bad-url', '{"registryMirrors": {"docker.io": ["http://"]}}', /invalid URL/],
    ['mirror-number', '{"registryMirrors": {"docker.io": [5]}}', /\[0\]: want a string/],
    ['insecure-string', '{"insecureRegistries": "x"}', /insecureRegistries: want an array/],
    ['insecure-url', '{"insecureRegistries": ["http://x/"]}', /insecureRegistries\[0\]/],
  ];
  for (const [name, text, re] of invalid) {
    it(`EINVAL for ${name}`, async () => {
      const p = await file(`${name}.json`, text);
      const e = await rejection(loadEngineConfig({ TSPOD_CONFIG: p }));
      expect(e.code).toBe('EINVAL');
      expect(e.message).toContain(p);
      expect(e.message).toMatch(re);
    });
  }
});
