/**
 * A small distribution-API server on loopback for the registry client's unit tests: manifests and blobs,
 * bearer-token (with a real token endpoint) or basic auth, ranged blobs, blob redirects to a second
 * loopback address that refuses any request carrying Authorization, and injected faults.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sha256 } from '../../../src/util/digest.js';

export interface Fault {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface FakeRegistryOptions {
  auth?: 'none' | 'bearer' | 'basic';
  /** expires_in the token endpoint announces. */
  tokenExpiresIn?: number;
  /** Field name the token endpoint uses. */
  tokenField?: 'token' | 'access_token';
  basicUser?: string;
  basicPassword?: string;
  /** Redirect blob GETs to the second server (on 127.0.0.2). */
  redirectBlobs?: boolean;
  /** Answer Range requests with the whole blob (200). */
  ignoreRange?: boolean;
  host?: string;
}

export interface RequestLog {
  method: string;
  url: string;
  authorization?: string;
  range?: string;
  accept?: string;
}

export class FakeRegistry {
  readonly manifests = new Map<string, { body: Buffer; contentType: string; dockerContentDigest?: string }>();
  readonly blobs = new Map<string, Buffer>();
  readonly log: RequestLog[] = [];
  readonly cdnLog: RequestLog[] = [];
  /** path → faults served before the real answer, one per request. */
  readonly faults = new Map<string, Fault[]>();
  tokensIssued = 0;
  readonly tokenQueries: URLSearchParams[] = [];
  #server!: Server;
  #cdn!: Server;
  #validTokens = new Set<string>();
  port = 0;
  cdnPort = 0;

  constructor(readonly opts: FakeRegistryOptions = {}) {}

  get host(): string {
    return `${this.opts.host ?? '127.0.0.1'}:${this.port}`;
  }
  get url(): string {
    return `http://${this.host}`;
  }

  addBlob(data: Buffer | string): { digest: string; size: number } {
    const b = Buffer.from(data);
    const digest = sha256(b);
    this.blobs.set(digest, b);
    return { digest, size: b.length };
  }

  addManifest(repo: string, tags: string[], body: Buffer | string, contentType: string): string {
    const b = Buffer.from(body);
    const digest = sha256(b);
    for (const t of [...tags, digest]) this.manifests.set(`${repo}/${t}`, { body: b, contentType });
    return digest;
  }

  inject(path: string, ...faults: Fault[]): void {
    this.faults.set(path, [...(this.faults.get(path) ?? []), ...faults]);
  }

  async start(): Promise<void> {
    this.#server = createServer((req, res) => this.#handle(req, res));
    this.#cdn = createServer((req, res) => this.#handleCdn(req, res));
    await listen(this.#server, this.opts.host ?? '127.0.0.1');
    await listen(this.#cdn, '127.0.0.2');
    this.port = (this.#server.address() as AddressInfo).port;
    this.cdnPort = (this.#cdn.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const s of [this.#server, this.#cdn]) {
      if (!s) continue;
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }

  #authorized(req: IncomingMessage, res: ServerResponse, repo: string): boolean {
    const mode = this.opts.auth ?? 'none';
    const h = req.headers.authorization;
    if (mode === 'none') return true;
    if (mode === 'bearer') {
      if (h?.startsWith('Bearer ') && this.#validTokens.has(h.slice(7))) return true;
      res.writeHead(401, {
        'www-authenticate': `Bearer realm="${this.url}/token",service="fake-registry",scope="repository:${repo}:pull"`,
        'content-type': 'application/json',
      });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return false;
    }
    const want = 'Basic ' + Buffer.from(`${this.opts.basicUser}:${this.opts.basicPassword}`).toString('base64');
    if (h === want) return true;
    res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"', 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
    return false;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    this.log.push({
      method: req.method ?? 'GET',
      url: url.pathname + url.search,
      authorization: req.headers.authorization,
      range: req.headers.range,
      accept: req.headers.accept,
    });
    if (url.pathname === '/token') {
      this.tokenQueries.push(url.searchParams);
      const token = `tok-${++this.tokensIssued}`;
      this.#validTokens.add(token);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ [this.opts.tokenField ?? 'token']: token, expires_in: this.opts.tokenExpiresIn ?? 300 }));
      return;
    }
    const queue = this.faults.get(url.pathname);
    if (queue && queue.length > 0) {
      const f = queue.shift()!;
      res.writeHead(f.status, f.headers ?? {});
      res.end(f.body ?? '');
      return;
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    const [, repo, kind, ref] = m as unknown as [string, string, string, string];
    if (!this.#authorized(req, res, repo)) return;
    if (kind === 'manifests') {
      const entry = this.manifests.get(`${repo}/${decodeURIComponent(ref)}`);
      if (!entry) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown', detail: { Tag: ref } }] }));
        return;
      }
      res.writeHead(200, {
        'content-type': entry.contentType,
        'content-length': entry.body.length,
        'docker-content-digest': entry.dockerContentDigest ?? sha256(entry.body),
      });
      res.end(entry.body);
      return;
    }
    const blob = this.blobs.get(ref);
    if (!blob) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }] }));
      return;
    }
    if (this.opts.redirectBlobs) {
      res.writeHead(307, { location: `http://127.0.0.2:${this.cdnPort}/cdn/${ref}?sig=x` });
      res.end();
      return;
    }
    serveRange(req, res, blob, this.opts.ignoreRange ?? false);
  }

  #handleCdn(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', `http://127.0.0.2:${this.cdnPort}`);
    this.cdnLog.push({ method: req.method ?? 'GET', url: url.pathname + url.search, authorization: req.headers.authorization, range: req.headers.range });
    if (req.headers.authorization !== undefined) {
      // like S3: a signed URL plus an Authorization header is an error
      res.writeHead(400, { 'content-type': 'text/plain' }).end('only one auth mechanism allowed');
      return;
    }
    const blob = this.blobs.get(url.pathname.replace('/cdn/', ''));
    if (!blob) {
      res.writeHead(404).end();
      return;
    }
    serveRange(req, res, blob, false);
  }
}

function serveRange(req: IncomingMessage, res: ServerResponse, blob: Buffer, ignoreRange: boolean): void {
  const range = /^bytes=([0-9]+)-$/.exec(req.headers.range ?? '');
  if (range && !ignoreRange) {
    const start = Number(range[1]);
    if (start >= blob.length) {
      res.writeHead(416, { 'content-range': `bytes */${blob.length}` }).end();
      return;
    }
    res.writeHead(206, {
      'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}`,
      'content-length': blob.length - start,
      'content-type': 'application/octet-stream',
    });
    res.end(blob.subarray(start));
    return;
  }
  res.writeHead(200, { 'content-length': blob.length, 'content-type': 'application/octet-stream' });
  res.end(blob);
}

function listen(s: Server, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, host, () => resolve());
  });
}
