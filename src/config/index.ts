/**
 * The engine configuration file: JSON named by $TSPOD_CONFIG. No file named → defaults.
 *   { "registryMirrors": { "docker.io": ["http://127.0.0.1:5000"] }, "insecureRegistries": ["myhost:5000"] }
 * Unknown keys are ignored (newer files keep working with older engines); known keys are type-checked.
 */
import { readFile } from 'node:fs/promises';
import { fail, isErrno, messageOf } from '../util/errors.js';

export interface EngineConfig {
  /** registry (as in a reference: "docker.io", "localhost:5000") → mirror base URLs with scheme, tried in order. */
  registryMirrors?: { [registry: string]: string[] };
  /** Registries ("host" or "host:port") spoken to over plain HTTP. Loopback hosts always are. */
  insecureRegistries?: string[];
}

export const CONFIG_ENV = 'TSPOD_CONFIG';

export function defaultEngineConfig(): EngineConfig {
  return {};
}

/** Reads the file named by TSPOD_CONFIG; EINVAL naming the file when it is missing or invalid. */
export async function loadEngineConfig(env: NodeJS.ProcessEnv = process.env): Promise<EngineConfig> {
  const file = env[CONFIG_ENV];
  if (file === undefined || file === '') return defaultEngineConfig();
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const why = isErrno(err, 'ENOENT') ? 'no such file' : messageOf(err);
    throw fail('EINVAL', `load engine config ${file}: ${why}`, err);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw fail('EINVAL', `load engine config ${file}: invalid JSON: ${messageOf(err)}`, err);
  }
  return validateEngineConfig(json, file);
}

/** Type-checks a parsed config object; `source` names it in errors. */
export function validateEngineConfig(json: unknown, source: string): EngineConfig {
  const bad = (why: string) => fail('EINVAL', `load engine config ${source}: ${why}`);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('want a JSON object');
  const obj = json as Record<string, unknown>;
  const out: EngineConfig = {};

  if (obj.registryMirrors !== undefined) {
    const m = obj.registryMirrors;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) {
      throw bad('registryMirrors: want an object of registry → array of URLs');
    }
    const mirrors: { [registry: string]: string[] } = {};
    for (const [registry, urls] of Object.entries(m as Record<string, unknown>)) {
      if (!Array.isArray(urls)) throw bad(`registryMirrors["${registry}"]: want an array of URLs`);
      mirrors[registry] = urls.map((u, i) => {
        const where = `registryMirrors["${registry}"][${i}]`;
        if (typeof u !== 'string') throw bad(`${where}: want a string`);
        if (!/^https?:\/\//i.test(u)) throw bad(`${where}: URL "${u}" must start with http:// or https://`);
        let url: URL;
        try {
          url = new URL(u);
        } catch {
          throw bad(`${where}: invalid URL "${u}"`);
        }
        if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
          throw bad(`${where}: URL "${u}" must not carry credentials, a query or a fragment`);
        }
        return u.replace(/\/+$/, '');
      });
    }
    out.registryMirrors = mirrors;
  }

  if (obj.insecureRegistries !== undefined) {
    const r = obj.insecureRegistries;
    if (!Array.isArray(r)) throw bad('insecureRegistries: want an array of hosts');
    out.insecureRegistries = r.map((h, i) => {
      if (typeof h !== 'string' || h === '' || h.includes('/')) {
        throw bad(`insecureRegistries[${i}]: want a host or host:port, got ${JSON.stringify(h)}`);
      }
      return h;
    });
  }
  return out;
}
