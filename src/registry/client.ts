/**
 * The registry client: manifests and blobs over the distribution API, composed of endpoints (mirrors then
 * the registry), auth (bearer / basic), retries, and verification (manifest digests, small blobs).
 * undici is imported on first use only.
 */
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { EngineConfig } from '../config/index.js';
import type { Reference } from '../reference/index.js';
import { isDigest, sha256 } from '../util/digest.js';
import { fail, messageOf, TspodError } from '../util/errors.js';
import type { Descriptor, Digest } from '../oci/types.js';
import { MANIFEST_ACCEPT, normalizeContentType } from '../oci/manifest.js';
import { Authenticator, noCredentials, pullScopes, type CredentialSource } from './auth.js';
import { endpointsFor, type Endpoint } from './endpoints.js';
import { Transport } from './transport.js';
import {
  DEFAULT_RETRY,
  discard,
  errorFromResponse,
  header,
  readCapped,
  send,
  withRetry,
  type HttpResponse,
  type RetryPolicy,
  type SendOptions,
} from './http.js';

export const MANIFEST_SIZE_CAP = 4 * 1024 * 1024;
/** getBlobBytes is for configs; anything larger is streamed with getBlob. */
export const SMALL_BLOB_CAP = 32 * 1024 * 1024;

export interface RegistryClientOptions {
  config: EngineConfig;
  userAgent?: string;
  /** Connections per origin. */
  concurrency?: number;
  credentials?: CredentialSource;
  retry?: Partial<RetryPolicy>;
  /** Proxy variables and TSPOD_CERTS_D are read from here (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface RequestOptions {
  method?: SendOptions['method'];
  /** "/v2/NAME/blobs/uploads/" or an absolute URL on the registry's origin. */
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Token scopes; default pull on the reference's repository. */
  scopes?: string[];
  /** Names the operation in errors, e.g. "push localhost:5000/app: upload blob sha256:…". */
  what?: string;
  /** Which counter in stats counts the request. */
  kind?: 'manifest' | 'blob';
}

export interface RegistryStats {
  /** HTTP requests sent for manifests (every attempt counts). */
  manifestRequests: number;
  /** HTTP requests sent for blobs (every attempt counts). */
  blobRequests: number;
  tokenRequests: number;
}

export interface ManifestResult {
  bytes: Buffer;
  /** The Content-Type without parameters, or the body's mediaType when the server sent none; '' if neither. */
  mediaType: string;
  /** sha256 of the bytes. */
  digest: Digest;
}

/** A mirror gets one chance per request: any failure moves on to the next endpoint without waiting. */
const MIRROR_RETRY: RetryPolicy = { tries: 1, baseDelayMs: 0, maxDelayMs: 0, rateLimitBudgetMs: 0 };

export class RegistryClient {
  readonly stats: RegistryStats = { manifestRequests: 0, blobRequests: 0, tokenRequests: 0 };
  readonly #config: EngineConfig;
  readonly #userAgent: string;
  readonly #concurrency: number;
  readonly #retry: RetryPolicy;
  readonly #auth: Authenticator;
  readonly #transport: Transport;
  /** https origins of insecure registries that turned out not to speak TLS. */
  readonly #failedProbes = new Set<string>();

  constructor(opts: RegistryClientOptions) {
    this.#config = opts.config;
    this.#userAgent = opts.userAgent ?? 'tspod/0.1';
    this.#concurrency = opts.concurrency ?? 8;
    this.#retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.#transport = new Transport({ connections: this.#concurrency, ...(opts.env ? { env: opts.env } : {}) });
    this.#auth = new Authenticator({
      dispatcher: (url) => this.#dispatcher(url),
      credentials: opts.credentials ?? noCredentials,
      retry: this.#retry,
      userAgent: this.#userAgent,
      onTokenRequest: () => this.stats.tokenRequests++,
    });
  }

  #dispatcher(url: URL, ep?: Endpoint): Promise<Dispatcher> {
    return this.#transport.dispatcherFor(url, ep && ep.tlsVerify === false && url.origin === ep.origin ? { tlsVerify: false } : {});
  }

  /** Closes pooled connections. The client must not be used afterwards. */
  async close(): Promise<void> {
    await this.#transport.close();
  }

  /**
   * GETs a manifest or index by tag or digest. Verifies the bytes against the digest asked for and
   * against Docker-Content-Digest when present; caps the size at 4 MiB.
   */
  async getManifest(ref: Reference, reference: string): Promise<ManifestResult> {
    const byDigest = reference.includes(':'); // tags cannot contain ':'
    if (byDigest && !isDigest(reference)) throw fail('EINVAL', `pull ${ref.registry}/${ref.repository}: invalid digest "${reference}"`);
    const what = `pull ${ref.registry}/${ref.repository}${byDigest ? '@' : ':'}${reference}`;
    const path = `/v2/${ref.repository}/manifests/${encodeURIComponent(reference).replace(/%3A/gi, ':')}`;
    return this.#acrossEndpoints(ref, what, async (ep, retry) => {
      const res = await this.#exchange(ep, ref, path, { accept: MANIFEST_ACCEPT.join(', ') }, what, retry, 'manifest');
      if (res.status !== 200) throw await errorFromResponse(what, res, 'manifest unknown');
      const length = Number(header(res, 'content-length'));
      const tooBig = () => fail('EREGISTRY', `${what}: manifest larger than ${MANIFEST_SIZE_CAP} bytes`);
      if (Number.isFinite(length) && length > MANIFEST_SIZE_CAP) {
        await discard(res.body);
        throw tooBig();
      }
      const bytes = await readCapped(res.body, MANIFEST_SIZE_CAP, tooBig);
      const digest = sha256(bytes);
      if (byDigest && digest !== reference) {
        throw fail('EDIGEST', `${what}: manifest from ${ep.origin} has digest ${digest}, not the one asked for`);
      }
      const dcd = header(res, 'docker-content-digest');
      if (dcd !== undefined && dcd.startsWith('sha256:') && dcd !== digest) {
        throw fail('EDIGEST', `${what}: manifest bytes hash to ${digest} but the registry says ${dcd}`);
      }
      let mediaType = normalizeContentType(header(res, 'content-type')) ?? '';
      if (mediaType === '') {
        try {
          const mt = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType;
          if (typeof mt === 'string') mediaType = mt;
        } catch {
          /* parseManifest will say what is wrong */
        }
      }
      return { bytes, mediaType, digest };
    });
  }

  /**
   * A blob as a stream from `offset` (Range: bytes=offset-), with Accept-Encoding: identity. Resolves once
   * the headers are in; `offset` in the result is where the body actually starts (0 if the server ignored
   * the Range). The caller verifies size and digest while consuming the stream.
   */
  async getBlob(ref: Reference, desc: Descriptor, offset = 0): Promise<{ body: Readable; offset: number }> {
    const what = `pull ${ref.registry}/${ref.repository}: fetch blob ${desc.digest}`;
    if (!isDigest(desc.digest)) throw fail('EINVAL', `${what}: invalid digest`);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > desc.size) {
      throw fail('EINVAL', `${what}: invalid offset ${offset} for a blob of ${desc.size} bytes`);
    }
    if (offset > 0 && offset === desc.size) return { body: Readable.from([]), offset };
    const path = `/v2/${ref.repository}/blobs/${desc.digest}`;
    try {
      return await this.#acrossEndpoints(ref, what, (ep, retry) => this.#blobFrom(ep, ref, path, desc, offset, what, retry));
    } catch (err) {
      // A foreign (non-distributable) layer lives at its URLs when the registry does not have it.
      const urls = (desc.urls ?? []).filter((u) => /^https?:\/\//i.test(u));
      if (!(err instanceof TspodError) || err.code !== 'ENOTFOUND' || urls.length === 0) throw err;
      const errors: string[] = [];
      for (const u of urls) {
        const ep: Endpoint = { base: '', origin: '', registry: ref.registry, mirror: false };
        try {
          return await this.#blobFrom(ep, ref, u, desc, offset, `${what} from ${u}`, this.#retry, true);
        } catch (e) {
          errors.push(messageOf(e));
        }
      }
      throw fail('ENOTFOUND', `${what}: not in the registry, and its URLs failed: ${errors.join('; ')}`, err);
    }
  }

  async #blobFrom(ep: Endpoint, ref: Reference, path: string, desc: Descriptor, offset: number, what: string,
    retry: RetryPolicy, foreign = false): Promise<{ body: Readable; offset: number }> {
    {
      const headers: Record<string, string> = { 'accept-encoding': 'identity' };
      if (offset > 0) headers.range = `bytes=${offset}-`;
      const exchange = async (): Promise<HttpResponse> => {
        if (!foreign) return this.#exchange(ep, ref, path, headers, what, retry, 'blob');
        // a foreign URL is another origin: never our credentials
        const dispatcher = await this.#dispatcher(new URL(path));
        return withRetry(what, retry, () => {
          this.stats.blobRequests++;
          return send(dispatcher, new URL(path), { headers: { 'user-agent': this.#userAgent, ...headers } });
        });
      };
      let res = await exchange();
      if (res.status === 416 && offset > 0) {
        // the server refuses our range (a proxy that lost it, a changed blob): start over from 0
        await discard(res.body);
        delete headers.range;
        res = await exchange();
      }
      if (res.status === 200) return { body: res.body, offset: 0 };
      if (res.status === 206) {
        const cr = /^bytes ([0-9]+)-([0-9]+)\/([0-9]+|\*)$/.exec(header(res, 'content-range') ?? '');
        if (!cr || Number(cr[1]) !== offset) {
          await discard(res.body);
          throw fail('EREGISTRY', `${what}: partial content starts at "${header(res, 'content-range') ?? 'nowhere'}", asked for byte ${offset}`);
        }
        return { body: res.body, offset };
      }
      throw await errorFromResponse(what, res, 'blob unknown');
    }
  }

  /** A whole small blob (an image config), verified against its descriptor's size and digest. */
  async getBlobBytes(ref: Reference, desc: Descriptor): Promise<Buffer> {
    const what = `pull ${ref.registry}/${ref.repository}: fetch blob ${desc.digest}`;
    if (desc.size > SMALL_BLOB_CAP) throw fail('EREGISTRY', `${what}: ${desc.size} bytes is too large to read whole`);
    const path = `/v2/${ref.repository}/blobs/${desc.digest}`;
    if (!isDigest(desc.digest)) throw fail('EINVAL', `${what}: invalid digest`);
    return this.#acrossEndpoints(ref, what, async (ep, retry) => {
      const res = await this.#exchange(ep, ref, path, { 'accept-encoding': 'identity' }, what, retry, 'blob');
      if (res.status !== 200) throw await errorFromResponse(what, res, 'blob unknown');
      const bytes = await readCapped(res.body, desc.size, () =>
        fail('EDIGEST', `${what}: blob from ${res.url.origin} is larger than its descriptor's ${desc.size} bytes`),
      );
      if (bytes.length !== desc.size) {
        throw fail('EDIGEST', `${what}: blob from ${res.url.origin} has ${bytes.length} bytes, descriptor says ${desc.size}`);
      }
      const digest = sha256(bytes);
      if (digest !== desc.digest) throw fail('EDIGEST', `${what}: blob from ${res.url.origin} hashes to ${digest}`);
      return bytes;
    });
  }

  /** Tries each endpoint in turn; a mirror that fails in any way hands over to the next one. */
  async #acrossEndpoints<T>(ref: Reference, what: string, fn: (ep: Endpoint, retry: RetryPolicy) => Promise<T>,
    registryOnly = false): Promise<T> {
    const endpoints = endpointsFor(ref.registry, this.#config)
      .filter((ep) => !(registryOnly && ep.mirror) && !(ep.probe && this.#failedProbes.has(ep.origin)));
    const mirrorErrors: string[] = [];
    for (const ep of endpoints) {
      try {
        return await fn(ep, ep.mirror || ep.probe ? MIRROR_RETRY : this.#retry);
      } catch (err) {
        if (ep.probe && err instanceof TspodError && err.code === 'ENETWORK') {
          // no TLS there: this insecure registry speaks plain http; do not ask again
          this.#failedProbes.add(ep.origin);
          continue;
        }
        if (!ep.mirror) {
          if (mirrorErrors.length > 0 && err instanceof TspodError && err.code === 'ENETWORK') {
            // the registry is out of reach (no Docker Hub here): what the mirrors said is the news, so it leads
            throw fail(err.code, `${what}: the mirrors answered ${mirrorErrors.join('; ')}; ${ep.origin} could not be reached: ${err.message.replace(`${what}: `, '')}`, err);
          }
          if (mirrorErrors.length > 0 && err instanceof TspodError) {
            // keep the upstream's code; mention the mirrors so a misconfiguration is visible
            throw fail(err.code, `${err.message} (mirrors failed too: ${mirrorErrors.join('; ')})`, err);
          }
          throw err;
        }
        mirrorErrors.push(`${ep.base}: ${messageOf(err).replace(`${what}: `, '')}`);
      }
    }
    throw fail('EINTERNAL', `${what}: no endpoint`);
  }

  /**
   * One authenticated request to the registry itself (no mirrors), for push (upload.ts): `path` starts
   * with /v2/ (or is an absolute URL the registry handed out, e.g. an upload Location), `scopes` come from
   * pushScopes()/pullScopes(). Retries connection errors, 5xx and 429 (so a body must be a Buffer), answers
   * one 401 challenge. The caller reads or discards the body.
   */
  async request(ref: Reference, opts: RequestOptions): Promise<HttpResponse> {
    const what = opts.what ?? `${(opts.method ?? 'GET').toLowerCase()} ${ref.registry}/${ref.repository}`;
    return this.#acrossEndpoints(ref, what, (ep, retry) => this.#exchange(ep, ref, opts.path, opts.headers ?? {}, what, retry, opts.kind ?? 'blob', {
      scopes: opts.scopes, method: opts.method, body: opts.body,
    }), true);
  }

  /**
   * `tspod login`: GET /v2/ on `registry` with these credentials, answering its challenge (a token with
   * the credentials, or Basic). EAUTH when the registry refuses them. Nothing is cached.
   */
  async checkLogin(registry: string, credentials: CredentialSource): Promise<void> {
    const what = `login ${registry}`;
    const ref = { registry, repository: '' } as Reference;
    await this.#acrossEndpoints(ref, what, (ep, retry) => this.#checkLoginAt(ep, registry, credentials, what, retry), true);
  }

  async #checkLoginAt(ep: Endpoint, registry: string, credentials: CredentialSource, what: string, retry: RetryPolicy): Promise<void> {
    const url = new URL(ep.base + '/v2/');
    const dispatcher = await this.#dispatcher(url, ep);
    const headers = { 'user-agent': this.#userAgent };
    let res = await withRetry(what, retry, () => send(dispatcher, url, { headers }));
    if (res.status === 200) {
      await discard(res.body);
      // a registry without auth accepts anyone: only a challenge can check the password, so ask the
      // credentials source anyway (helpers may fail) and accept
      return;
    }
    if (res.status !== 401) throw await errorFromResponse(what, res, 'no registry API at /v2/');
    const challenge = res.headers['www-authenticate'];
    await discard(res.body);
    const auth = new Authenticator({
      dispatcher: (u) => this.#dispatcher(u), credentials, retry: this.#retry, userAgent: this.#userAgent,
    });
    const authorization = await auth.respond(what, ep.origin, registry, Array.isArray(challenge) ? challenge.join(', ') : challenge, [],
      { cache: false });
    res = await withRetry(what, retry, () => send(dispatcher, url, { headers, authorization, authOrigin: ep.origin }));
    if (res.status === 401 || res.status === 403) {
      await discard(res.body);
      throw fail('EAUTH', `${what}: the registry refused the credentials (HTTP ${res.status})`);
    }
    if (res.status !== 200) throw await errorFromResponse(what, res, 'no registry API at /v2/');
    await discard(res.body);
  }

  /** One request against one endpoint, with retries, answering one 401 challenge. */
  async #exchange(
    ep: Endpoint,
    ref: Reference,
    path: string,
    extraHeaders: Record<string, string>,
    what: string,
    retry: RetryPolicy,
    kind: 'manifest' | 'blob',
    more: { scopes?: string[]; method?: SendOptions['method']; body?: Buffer | string } = {},
  ): Promise<HttpResponse> {
    const url = /^https?:\/\//i.test(path) ? new URL(path) : new URL(ep.base + path);
    const dispatcher = await this.#dispatcher(url, ep);
    const scope = more.scopes ?? pullScopes(ref.repository);
    const headers = { 'user-agent': this.#userAgent, ...extraHeaders };
    const attempt = (authorization: string | undefined) =>
      withRetry(what, retry, () => {
        if (kind === 'manifest') this.stats.manifestRequests++;
        else this.stats.blobRequests++;
        return send(dispatcher, url, { method: more.method, body: more.body, headers, authorization, authOrigin: ep.origin });
      });
    let authorization = this.#auth.cached(ep.origin, scope);
    let res = await attempt(authorization);
    if (res.status === 401 && res.url.origin === ep.origin) {
      const challenge = res.headers['www-authenticate'];
      await discard(res.body);
      if (authorization !== undefined) this.#auth.forget(ep.origin, scope);
      authorization = await this.#auth.respond(
        what,
        ep.origin,
        ep.registry,
        Array.isArray(challenge) ? challenge.join(', ') : challenge,
        scope,
      );
      res = await attempt(authorization);
      if (res.status === 401) {
        this.#auth.forget(ep.origin, scope);
        const e = await errorFromResponse(what, res, 'unauthorized');
        throw fail('EAUTH', e.message);
      }
    }
    return res;
  }
}
