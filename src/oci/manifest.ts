/**
 * Manifest and index parsing with validation (image-spec manifest.md, image-index.md, descriptor.md).
 * Pure: bytes in, typed data out. Errors name the reference being pulled.
 */
import { fail } from '../util/errors.js';
import { isDigest } from '../util/digest.js';
import {
  MediaType,
  isIndexMediaType,
  isManifestMediaType,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  type Platform,
} from './types.js';

export type ParsedManifest =
  | { kind: 'index'; mediaType: string; index: ImageIndex }
  | { kind: 'manifest'; mediaType: string; manifest: ImageManifest };

const SCHEMA1 = new Set<string>([MediaType.DockerManifestSchema1, MediaType.DockerManifestSchema1Signed]);
/** Where the various media types are announced in an Accept header, most preferred first. */
export const MANIFEST_ACCEPT: readonly string[] = [
  MediaType.OciIndex,
  MediaType.OciManifest,
  MediaType.DockerManifestList,
  MediaType.DockerManifest,
];

/** "application/vnd.oci.image.index.v1+json; charset=utf-8" → "application/vnd.oci.image.index.v1+json". */
export function normalizeContentType(ct: string | undefined): string | undefined {
  if (ct === undefined) return undefined;
  const t = ct.split(';')[0]!.trim().toLowerCase();
  return t === '' ? undefined : t;
}

function isKnown(mt: string | undefined): boolean {
  return isIndexMediaType(mt) || isManifestMediaType(mt);
}

/**
 * Parses a manifest or an index. The media type comes from the body's `mediaType`, else from the
 * Content-Type, else (OCI allows omitting it) from the fields: `manifests` → index, `config`+`layers` → manifest.
 * Docker schema 1 → EUNSUPPORTED; Content-Type and body disagreeing → EREGISTRY; bad structure → EREGISTRY.
 * A generic Content-Type (application/json, octet-stream: some mirrors and file servers) is not a disagreement.
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined, ref: string): ParsedManifest {
  const bad = (why: string) => fail('EREGISTRY', `pull ${ref}: invalid manifest: ${why}`);
  const ct = normalizeContentType(contentType);
  const schema1 = () =>
    fail(
      'EUNSUPPORTED',
      `pull ${ref}: docker schema 1 manifests are not supported; push the image again with a current client ` +
        `(docker schema 2 or OCI)`,
    );
  if (ct !== undefined && SCHEMA1.has(ct)) throw schema1();

  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw fail('EREGISTRY', `pull ${ref}: invalid manifest: not JSON (${(err as Error).message})`, err);
  }
  if (!isObject(json)) throw bad('want a JSON object');
  const bodyType = json.mediaType;
  if (bodyType !== undefined && typeof bodyType !== 'string') throw bad('mediaType must be a string');
  if ((bodyType !== undefined && SCHEMA1.has(bodyType)) || json.schemaVersion === 1) throw schema1();
  if (json.schemaVersion !== 2) throw bad(`unsupported schemaVersion ${JSON.stringify(json.schemaVersion)}`);

  let mediaType: string;
  if (bodyType !== undefined) {
    if (ct !== undefined && isKnown(ct) && ct !== bodyType) {
      throw fail('EREGISTRY', `pull ${ref}: registry sent Content-Type ${ct} for a manifest whose mediaType is ${bodyType}`);
    }
    mediaType = bodyType;
  } else if (ct !== undefined && isKnown(ct)) {
    mediaType = ct;
  } else if (Array.isArray(json.manifests)) {
    mediaType = MediaType.OciIndex;
  } else if (json.config !== undefined && Array.isArray(json.layers)) {
    mediaType = MediaType.OciManifest;
  } else {
    throw bad('cannot tell an index from a manifest (no mediaType, no manifests, no config and layers)');
  }

  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(json.manifests)) throw bad('index without a manifests array');
    if (json.config !== undefined || json.layers !== undefined) throw bad(`${mediaType} must not have config or layers`);
    const manifests = json.manifests.map((d, i) => validateDescriptor(d, `manifests[${i}]`, bad));
    const index: ImageIndex = { schemaVersion: 2, manifests };
    if (bodyType !== undefined) index.mediaType = bodyType;
    if (json.annotations !== undefined) index.annotations = validateAnnotations(json.annotations, 'annotations', bad);
    return { kind: 'index', mediaType, index };
  }
  if (isManifestMediaType(mediaType)) {
    if (json.manifests !== undefined) throw bad(`${mediaType} must not have manifests`);
    if (json.config === undefined) throw bad('manifest without config');
    if (!Array.isArray(json.layers)) throw bad('manifest without a layers array');
    const config = validateDescriptor(json.config, 'config', bad);
    const layers = json.layers.map((d, i) => validateDescriptor(d, `layers[${i}]`, bad));
    const manifest: ImageManifest = { schemaVersion: 2, config, layers };
    if (bodyType !== undefined) manifest.mediaType = bodyType;
    if (json.annotations !== undefined) manifest.annotations = validateAnnotations(json.annotations, 'annotations', bad);
    return { kind: 'manifest', mediaType, manifest };
  }
  throw fail('EUNSUPPORTED', `pull ${ref}: unsupported manifest media type ${mediaType}`);
}

/** Validates one descriptor; `where` names it ("layers[2]") and `bad` builds the error. */
export function validateDescriptor(d: unknown, where: string, bad: (why: string) => Error): Descriptor {
  if (!isObject(d)) throw bad(`${where}: want a descriptor object`);
  if (typeof d.mediaType !== 'string' || d.mediaType === '') throw bad(`${where}: missing mediaType`);
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) {
    throw bad(`${where}: invalid digest ${JSON.stringify(d.digest)} (want sha256:<64 hex>)`);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw bad(`${where}: invalid size ${JSON.stringify(d.size)}`);
  }
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.urls !== undefined) {
    if (!Array.isArray(d.urls) || !d.urls.every((u) => typeof u === 'string')) throw bad(`${where}: urls must be strings`);
    out.urls = d.urls as string[];
  }
  if (d.annotations !== undefined) out.annotations = validateAnnotations(d.annotations, `${where}.annotations`, bad);
  if (d.platform !== undefined) out.platform = validatePlatform(d.platform, `${where}.platform`, bad);
  return out;
}

function validatePlatform(p: unknown, where: string, bad: (why: string) => Error): Platform {
  if (!isObject(p)) throw bad(`${where}: want an object`);
  if (typeof p.os !== 'string' || typeof p.architecture !== 'string') throw bad(`${where}: os and architecture must be strings`);
  const out: Platform = { os: p.os, architecture: p.architecture };
  if (p.variant !== undefined) {
    if (typeof p.variant !== 'string') throw bad(`${where}.variant must be a string`);
    if (p.variant !== '') out.variant = p.variant;
  }
  if (p['os.version'] !== undefined) {
    if (typeof p['os.version'] !== 'string') throw bad(`${where}.os.version must be a string`);
    out['os.version'] = p['os.version'];
  }
  if (p['os.features'] !== undefined) {
    const f = p['os.features'];
    if (!Array.isArray(f) || !f.every((x) => typeof x === 'string')) throw bad(`${where}.os.features must be strings`);
    out['os.features'] = f as string[];
  }
  return out;
}

function validateAnnotations(a: unknown, where: string, bad: (why: string) => Error): Record<string, string> {
  if (!isObject(a) || !Object.values(a).every((v) => typeof v === 'string')) {
    throw bad(`${where}: want an object of strings`);
  }
  return a as Record<string, string>;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
