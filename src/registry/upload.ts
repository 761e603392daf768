/**
 * Pushing to a registry (distribution spec "Pushing"): HEAD a blob to skip what the repository has,
 * mount a blob from another repository of the same registry, upload the rest monolithically (POST,
 * then one PUT with the bytes) or in chunks (POST, PATCH with Content-Range…, PUT ?digest=), and
 * finally PUT the manifest. Auth as for pull (the same Authenticator), with the scope
 * `repository:<name>:pull,push`. Mirrors are for pulls only: a push goes to the registry itself, through
 * the same transport as a pull (proxies from the environment, CA bundles and client certificates from
 * certs.d: transport.ts).
 */
import type { Readable } from 'node:stream';
import type { EngineConfig } from '../config/index.js';
import type { Reference } from '../reference/index.js';
import type { Descriptor, Digest } from '../oci/types.js';
import { isDigest, sha256 } from '../util/digest.js';
import { fail } from '../util/errors.js';
import { Authenticator, noCredentials, type CredentialSource } from './auth.js';
import { registryBaseUrl } from './endpoints.js';
import { DEFAULT_RETRY, discard, errorFromResponse, header, send, withRetry, type HttpResponse, type RetryPolicy } from './http.js';
import { Transport } from './transport.js';

export interface UploaderOptions {
  config: EngineConfig;
  credentials?: CredentialSource;
  userAgent?: string;
  retry?: Partial<RetryPolicy>;
  /** Blobs up to this size go up in one PUT; larger ones in chunks (default 32 MiB). */
  monolithicMax?: number;
  /** Chunk size of a chunked upload (default 16 MiB). */
  chunkSize?: number;
  /** Environment for proxies and TSPOD_CERTS_D (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface UploadStats {
  heads: number;
  mounts: number;
  monolithic: number;
  chunked: number;
  patches: number;
}

/** How a blob got into the repository. */
export type BlobOutcome = 'exists' | 'mounted' | 'uploaded';

const NO_RETRY: RetryPolicy = { tries: 1, baseDelayMs: 0, maxDelayMs: 0, rateLimitBudgetMs: 0 };

export class RegistryUploader {
  readonly stats: UploadStats = { heads: 0, mounts: 0, monolithic: 0, chunked: 0, patches: 0 };
  readonly #config: EngineConfig;
  readonly #auth: Authenticator;
  readonly #retry: RetryPolicy;
  readonly #userAgent: string;
  readonly #monolithicMax: number;
  readonly #chunkSize: number;
  readonly #transport: Transport;

  constructor(opts: UploaderOptions) {
    this.#config = opts.config;
    this.#userAgent = opts.userAgent ?? 'tspod/0.1';
    this.#retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.#monolithicMax = opts.monolithicMax ?? 32 * 1024 * 1024;
    this.#chunkSize = opts.chunkSize ?? 16 * 1024 * 1024;
    if (!(this.#chunkSize > 0)) throw fail('EINVAL', `push: invalid chunk size ${this.#chunkSize}`);
    this.#transport = new Transport({ connections: 4, ...(opts.env ? { env: opts.env } : {}) });
    this.#auth = new Authenticator({
      dispatcher: (url) => this.#transport.dispatcherFor(url),
      credentials: opts.credentials ?? noCredentials,
      retry: this.#retry,
      userAgent: this.#userAgent,
    });
  }

  async close(): Promise<void> {
    await this.#transport.close();
  }

  #base(ref: Reference): string {
    return registryBaseUrl(ref.registry, this.#config);
  }

  /**
   * One request with auth: a 401 is answered once with a token for `scope` (push scope by default).
   * `retry` applies to connection errors and 5xx; requests that move an upload session use none.
   */
  async #request(ref: Reference, what: string, method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH', url: URL,
    headers: Record<string, string>, body: Buffer | undefined, retry: RetryPolicy, scope?: string[]): Promise<HttpResponse> {
    const dispatcher = await this.#transport.dispatcherFor(url);
    const origin = new URL(this.#base(ref)).origin;
    const sc = scope ?? [`repository:${ref.repository}:pull,push`];
    const h = { 'user-agent': this.#userAgent, ...headers };
    const attempt = (authorization: string | undefined) =>
      withRetry(what, retry, () => send(dispatcher, url, { method, headers: h, body, authorization, authOrigin: origin }));
    let authorization = this.#auth.cached(origin, sc);
    let res = await attempt(authorization);
    if (res.status === 401 && res.url.origin === origin) {
      const challenge = res.headers['www-authenticate'];
      await discard(res.body);
      if (authorization !== undefined) this.#auth.forget(origin, sc);
      authorization = await this.#auth.respond(what, origin, ref.registry, Array.isArray(challenge) ? challenge.join(', ') : challenge, sc);
      res = await attempt(authorization);
      if (res.status === 401) {
        this.#auth.forget(origin, sc);
        const e = await errorFromResponse(what, res, 'unauthorized');
        throw fail('EAUTH', e.message);
      }
    }
    return res;
  }

  /** HEAD /v2/<name>/blobs/<digest>: true when the repository has the blob. */
  async hasBlob(ref: Reference, digest: Digest): Promise<boolean> {
    const what = `push ${ref.registry}/${ref.repository}: check blob ${digest}`;
    if (!isDigest(digest)) throw fail('EINVAL', `${what}: invalid digest`);
    this.stats.heads++;
    const res = await this.#request(ref, what, 'HEAD', new URL(`${this.#base(ref)}/v2/${ref.repository}/blobs/${digest}`), {}, undefined, this.#retry);
    await discard(res.body);
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw await errorFromResponse(what, res, 'blob unknown');
  }

  /**
   * Starts an upload session, asking to mount `digest` from `from` (another repository of the same
   * registry) when given. Returns 'mounted' when the registry mounted it, else the session URL.
   */
  async #start(ref: Reference, digest: Digest, from?: string): Promise<{ mounted: true } | { mounted: false; location: URL }> {
    const what = `push ${ref.registry}/${ref.repository}: start upload of ${digest}`;
    const url = new URL(`${this.#base(ref)}/v2/${ref.repository}/blobs/uploads/`);
    let scope: string[] | undefined;
    if (from !== undefined) {
      url.searchParams.set('mount', digest);
      url.searchParams.set('from', from);
      this.stats.mounts++;
      scope = [`repository:${ref.repository}:pull,push`, `repository:${from}:pull`];
    }
    const res = await this.#request(ref, what, 'POST', url, { 'content-length': '0' }, Buffer.alloc(0), this.#retry, scope);
    await discard(res.body);
    if (res.status === 201 && from !== undefined) return { mounted: true };
    if (res.status !== 202) throw await errorFromResponse(what, res, 'repository unknown');
    return { mounted: false, location: this.#location(res, what) };
  }

  #location(res: HttpResponse, what: string): URL {
    const loc = header(res, 'location');
    if (loc === undefined) throw fail('EREGISTRY', `${what}: the registry answered ${res.status} without a Location`);
    try {
      return new URL(loc, res.url);
    } catch (err) {
      throw fail('EREGISTRY', `${what}: invalid upload location "${loc}"`, err);
    }
  }

  /**
   * Makes sure the repository has the blob: HEAD; else mount from `mountFrom` (repositories of the
   * same registry known to have it, tried in order); else upload the bytes `open()` streams.
   */
  async pushBlob(ref: Reference, desc: Descriptor, open: () => Readable, mountFrom: string[] = []): Promise<BlobOutcome> {
    if (await this.hasBlob(ref, desc.digest)) return 'exists';
    let session: URL | undefined;
    for (const from of mountFrom) {
      if (from === ref.repository) continue;
      const s = await this.#start(ref, desc.digest, from);
      if (s.mounted) return 'mounted';
      session = s.location; // the registry could not mount: it opened a normal upload instead
      break;
    }
    if (session === undefined) {
      const s = await this.#start(ref, desc.digest);
      if (s.mounted) return 'mounted';
      session = s.location;
    }
    if (desc.size <= this.#monolithicMax) await this.#monolithic(ref, desc, session, open);
    else await this.#chunked(ref, desc, session, open);
    return 'uploaded';
  }

  async #monolithic(ref: Reference, desc: Descriptor, session: URL, open: () => Readable): Promise<void> {
    const what = `push ${ref.registry}/${ref.repository}: upload blob ${desc.digest}`;
    const bytes = await readAll(open(), desc, what);
    this.stats.monolithic++;
    const url = new URL(session);
    url.searchParams.set('digest', desc.digest);
    const res = await this.#request(ref, what, 'PUT', url,
      { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) }, bytes, NO_RETRY);
    await this.#expectCreated(res, what, desc.digest);
  }

  async #chunked(ref: Reference, desc: Descriptor, session: URL, open: () => Readable): Promise<void> {
    const what = `push ${ref.registry}/${ref.repository}: upload blob ${desc.digest}`;
    this.stats.chunked++;
    let location = session;
    let offset = 0;
    const send = async (chunk: Buffer): Promise<void> => {
      this.stats.patches++;
      const res = await this.#request(ref, what, 'PATCH', location, {
        'content-type': 'application/octet-stream',
        'content-length': String(chunk.length),
        'content-range': `${offset}-${offset + chunk.length - 1}`,
      }, chunk, NO_RETRY);
      await discard(res.body);
      if (res.status !== 202) throw await errorFromResponse(what, res, 'upload unknown');
      offset += chunk.length;
      const range = header(res, 'range');
      if (range !== undefined && range !== `0-${offset - 1}`) {
        throw fail('EREGISTRY', `${what}: registry has bytes ${range} after ${offset} bytes were sent`);
      }
      location = this.#location(res, what);
    };
    let pending: Buffer[] = [];
    let pendingLen = 0;
    for await (const c of open()) {
      let b = c as Buffer;
      while (b.length > 0) {
        const take = Math.min(b.length, this.#chunkSize - pendingLen);
        pending.push(b.subarray(0, take));
        pendingLen += take;
        b = b.subarray(take);
        if (pendingLen === this.#chunkSize) {
          await send(Buffer.concat(pending, pendingLen));
          pending = [];
          pendingLen = 0;
        }
      }
    }
    if (pendingLen > 0) await send(Buffer.concat(pending, pendingLen));
    if (offset !== desc.size) throw fail('EDIGEST', `${what}: read ${offset} bytes, the descriptor says ${desc.size}`);
    const url = new URL(location);
    url.searchParams.set('digest', desc.digest);
    const res = await this.#request(ref, what, 'PUT', url, { 'content-length': '0' }, Buffer.alloc(0), NO_RETRY);
    await this.#expectCreated(res, what, desc.digest);
  }

  async #expectCreated(res: HttpResponse, what: string, digest: Digest): Promise<void> {
    if (res.status !== 201) throw await errorFromResponse(what, res, 'upload unknown');
    await discard(res.body);
    const dcd = header(res, 'docker-content-digest');
    if (dcd !== undefined && dcd !== digest) throw fail('EDIGEST', `${what}: the registry stored it as ${dcd}`);
  }

  /** PUT /v2/<name>/manifests/<tag or digest>; returns the manifest's digest. */
  async putManifest(ref: Reference, reference: string, bytes: Buffer, mediaType: string): Promise<Digest> {
    const what = `push ${ref.registry}/${ref.repository}:${reference}: put manifest`;
    const digest = sha256(bytes);
    const url = new URL(`${this.#base(ref)}/v2/${ref.repository}/manifests/${reference}`);
    const res = await this.#request(ref, what, 'PUT', url,
      { 'content-type': mediaType, 'content-length': String(bytes.length) }, bytes, this.#retry);
    if (res.status !== 201 && res.status !== 200) throw await errorFromResponse(what, res, 'manifest unknown');
    await discard(res.body);
    const dcd = header(res, 'docker-content-digest');
    if (dcd !== undefined && dcd.startsWith('sha256:') && dcd !== digest) {
      throw fail('EDIGEST', `${what}: the registry stored it as ${dcd}, the bytes hash to ${digest}`);
    }
    return digest;
  }
}

async function readAll(stream: Readable, desc: Descriptor, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    chunks.push(c as Buffer);
    n += (c as Buffer).length;
    if (n > desc.size) {
      stream.destroy();
      throw fail('EDIGEST', `${what}: more than the descriptor's ${desc.size} bytes`);
    }
  }
  if (n !== desc.size) throw fail('EDIGEST', `${what}: read ${n} bytes, the descriptor says ${desc.size}`);
  return Buffer.concat(chunks, n);
}
