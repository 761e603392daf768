/**
 * Image configuration parsing with validation (image-spec config.md). Unknown fields are kept as they are
 * (the config's digest is the image id: we never re-serialise it), but the fields tspod relies on are checked.
 */
import { fail } from '../util/errors.js';
import { isDigest } from '../util/digest.js';
import type { ImageConfig } from './types.js';

/**
 * Parses an image config; `what` names it in errors (e.g. "docker.io/library/alpine:3.19 config sha256:…").
 * Throws EREGISTRY "parse image config <what>: …" when it is not a usable config.
 */
export function parseImageConfig(bytes: Buffer, what = 'image config'): ImageConfig {
  const bad = (why: string) => fail('EREGISTRY', `parse image config ${what}: ${why}`);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw fail('EREGISTRY', `parse image config ${what}: not JSON (${(err as Error).message})`, err);
  }
  if (!isObject(json)) throw bad('want a JSON object');
  if (typeof json.architecture !== 'string' || json.architecture === '') throw bad('missing architecture');
  if (typeof json.os !== 'string' || json.os === '') throw bad('missing os');
  if (json.variant !== undefined && typeof json.variant !== 'string') throw bad('variant must be a string');
  for (const k of ['created', 'author'] as const) {
    if (json[k] !== undefined && typeof json[k] !== 'string') throw bad(`${k} must be a string`);
  }

  const rootfs = json.rootfs;
  if (!isObject(rootfs)) throw bad('missing rootfs');
  if (rootfs.type !== 'layers') throw bad(`rootfs.type must be "layers", got ${JSON.stringify(rootfs.type)}`);
  if (!Array.isArray(rootfs.diff_ids)) throw bad('missing rootfs.diff_ids');
  rootfs.diff_ids.forEach((d, i) => {
    if (typeof d !== 'string' || !isDigest(d)) throw bad(`rootfs.diff_ids[${i}]: invalid digest ${JSON.stringify(d)}`);
  });

  if (json.config !== undefined && json.config !== null) {
    const c = json.config;
    if (!isObject(c)) throw bad('config must be an object');
    for (const k of ['Env', 'Entrypoint', 'Cmd']) {
      const v = c[k];
      if (v !== undefined && v !== null && !isStringArray(v)) throw bad(`config.${k} must be an array of strings`);
    }
    for (const k of ['User', 'WorkingDir', 'StopSignal']) {
      if (c[k] !== undefined && typeof c[k] !== 'string') throw bad(`config.${k} must be a string`);
    }
    for (const k of ['ExposedPorts', 'Volumes', 'Labels']) {
      const v = c[k];
      if (v !== undefined && v !== null && !isObject(v)) throw bad(`config.${k} must be an object`);
    }
    if (isObject(c.Labels) && !Object.values(c.Labels).every((v) => typeof v === 'string')) {
      throw bad('config.Labels values must be strings');
    }
  }

  if (json.history !== undefined && json.history !== null) {
    if (!Array.isArray(json.history) || !json.history.every(isObject)) throw bad('history must be an array of objects');
  }
  return json as unknown as ImageConfig;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isStringArray(x: unknown): x is string[] {
  return Array.isArray(x) && x.every((s) => typeof s === 'string');
}
