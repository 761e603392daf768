/**
 * Image references, normalised the way docker does it (distribution/reference's ParseNormalizedNamed):
 *   alpine                      → docker.io/library/alpine:latest
 *   user/img                    → docker.io/user/img:latest
 *   localhost:5000/x            → localhost:5000/x:latest
 *   host.tld/a/b/c@sha256:…     → host.tld/a/b/c@sha256:…      (no tag added next to a digest)
 *   img:tag@sha256:…            → docker.io/library/img:tag@sha256:…  (the digest wins for pulling;
 *                                                                       the tag is kept for naming)
 * Pure string work; no I/O.
 */
import { fail } from '../util/errors.js';
import { isDigest } from '../util/digest.js';
import type { Digest } from '../oci/types.js';

export interface Reference {
  /** Registry host as the user names it, normalised: "docker.io", "localhost:5000", "127.0.0.1:5000". */
  registry: string;
  /** Repository path inside the registry: "library/alpine". */
  repository: string;
  tag?: string;
  digest?: Digest;
}

export const DEFAULT_REGISTRY = 'docker.io';
export const DEFAULT_TAG = 'latest';
/** The host that actually serves the registry API for docker.io. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
const LEGACY_DEFAULT_REGISTRY = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
const NAME_TOTAL_MAX = 255;

// Grammar (distribution/reference regexp.go, restated):
//   domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//   domain           := (domain-component ('.' domain-component)* | '[' ipv6 ']') (':' port)?
//   path-component   := /[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*/
//   tag              := /[\w][\w.-]{0,127}/
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`,
);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const ANCHORED_HEX64_RE = /^[a-f0-9]{64}$/;
const DIGEST_LIKE_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

function invalid(s: string, why: string): Error {
  return fail('EINVAL', `invalid reference "${s}": ${why}`);
}

/** True if a host is the docker hub under any of its names. */
export function isDockerHub(registry: string): boolean {
  return registry === DEFAULT_REGISTRY || registry === LEGACY_DEFAULT_REGISTRY;
}

/** The host:port the registry API lives at: registry-1.docker.io for docker.io, else the registry itself. */
export function registryApiHost(registry: string): string {
  return isDockerHub(registry) ? DOCKER_HUB_API_HOST : registry;
}

/**
 * Parses and normalises a reference as `docker pull` does. Adds the tag "latest" only when neither a tag
 * nor a digest is given. Throws EINVAL naming the reference.
 */
export function parseReference(s: string): Reference {
  if (typeof s !== 'string' || s.length === 0) throw invalid(String(s), 'empty reference');
  if (ANCHORED_HEX64_RE.test(s)) {
    throw invalid(s, 'cannot specify 64-byte hexadecimal strings (an image id is not a reference)');
  }
  if (/\s/.test(s)) throw invalid(s, 'whitespace is not allowed');

  // 1. digest: everything after the first '@'.
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) {
      if (DIGEST_LIKE_RE.test(digest) && !digest.startsWith('sha256:')) {
        throw invalid(s, `unsupported digest algorithm in "${digest}" (only sha256)`);
      }
      throw invalid(s, `invalid digest "${digest}"`);
    }
  }

  // 2. tag: a ':' after the last '/' (a ':' before it belongs to the registry's port).
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.indexOf(':', lastSlash + 1);
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw invalid(s, `invalid tag "${tag}"`);
  }
  if (rest.length === 0) throw invalid(s, 'missing repository name');

  // 3. registry: the first component, when it looks like a host.
  let registry = DEFAULT_REGISTRY;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    // docker also treats a first component with uppercase letters as a host (it cannot be a path component)
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.toLowerCase() !== first) {
      registry = first;
      repository = rest.slice(slash + 1);
      if (!DOMAIN_RE.test(registry)) throw invalid(s, `invalid registry host "${registry}"`);
      const port = /:([0-9]+)$/.exec(registry)?.[1];
      if (port !== undefined && !(Number(port) >= 1 && Number(port) <= 65535)) throw invalid(s, `invalid port ${port} in registry host "${registry}"`);
    }
  }
  if (registry === LEGACY_DEFAULT_REGISTRY) registry = DEFAULT_REGISTRY;
  if (registry === DEFAULT_REGISTRY && !repository.includes('/')) repository = OFFICIAL_REPO_PREFIX + repository;

  if (repository.length === 0) throw invalid(s, 'missing repository name');
  if (repository.toLowerCase() !== repository) throw invalid(s, 'repository name must be lowercase');
  for (const part of repository.split('/')) {
    if (!PATH_COMPONENT_RE.test(part)) {
      throw invalid(s, part === '' ? 'empty path component in repository name' : `invalid repository name component "${part}"`);
    }
  }
  if (registry.length + 1 + repository.length > NAME_TOTAL_MAX) {
    throw invalid(s, `repository name must not be longer than ${NAME_TOTAL_MAX} characters`);
  }

  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  const ref: Reference = { registry, repository };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** "registry/repository" — the fully qualified name without tag or digest. */
export function referenceName(r: Reference): string {
  return `${r.registry}/${r.repository}`;
}

/** The full normalised form: "docker.io/library/alpine:3.19", "host/x:tag@sha256:…", "host/x@sha256:…". */
export function formatReference(r: Reference): string {
  let out = referenceName(r);
  if (r.tag !== undefined) out += ':' + r.tag;
  if (r.digest !== undefined) out += '@' + r.digest;
  return out;
}

/** The short name docker shows: "alpine", "user/img", "localhost:5000/x" (no tag or digest). */
export function familiarName(r: Reference): string {
  if (isDockerHub(r.registry)) {
    const rest = r.repository.slice(OFFICIAL_REPO_PREFIX.length);
    if (r.repository.startsWith(OFFICIAL_REPO_PREFIX) && !rest.includes('/')) return rest;
    return r.repository;
  }
  return referenceName(r);
}

/** The short name with tag and digest: "alpine:3.19", "localhost:5000/x@sha256:…". */
export function familiarString(r: Reference): string {
  let out = familiarName(r);
  if (r.tag !== undefined) out += ':' + r.tag;
  if (r.digest !== undefined) out += '@' + r.digest;
  return out;
}

/** What to ask the registry for: the digest when there is one (it wins), else the tag. */
export function pullReference(r: Reference): string {
  return r.digest ?? r.tag ?? DEFAULT_TAG;
}

/** The same repository with a different tag or digest (used to name what a pull resolved to). */
export function withDigest(r: Reference, digest: Digest): Reference {
  return { ...r, digest };
}

/** A stored image name as docker shows it: "alpine:3.19" for docker.io/library/alpine:3.19; other text (an image id) as it is. */
export function familiarRef(name: string): string {
  if (/^(sha256:)?[a-f0-9]{12,64}$/.test(name)) return name;
  try {
    return familiarString(parseReference(name));
  } catch {
    return name;
  }
}
