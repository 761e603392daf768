/**
 * The connection layer under the registry client: which undici dispatcher carries a request.
 *
 *   - Proxies: when HTTPS_PROXY / HTTP_PROXY (either case) is set, requests go through undici's
 *     EnvHttpProxyAgent, which also honours NO_PROXY; otherwise a plain Agent.
 *   - Per-registry TLS, as docker and podman configure it: a directory named after the host
 *     ("registry.example.com:5000" or "registry.example.com") under each certs.d root
 *     (/etc/containers/certs.d, /etc/docker/certs.d; $TSPOD_CERTS_D, colon-separated, replaces
 *     the list). `*.crt` files there are extra CA certificates (trusted in addition to the system's);
 *     a `NAME.cert` + `NAME.key` pair is a client certificate.
 * undici is imported on first use only.
 */
import { readdir, readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { join } from 'node:path';
import type { Dispatcher } from 'undici';
import { fail, isErrno, messageOf } from '../util/errors.js';

type Closable = Dispatcher & { close(): Promise<void> };

export const DEFAULT_CERTS_DIRS = ['/etc/containers/certs.d', '/etc/docker/certs.d'];

export interface TransportOptions {
  /** Connections per origin. */
  connections: number;
  env?: NodeJS.ProcessEnv;
  /** certs.d roots; default $TSPOD_CERTS_D or DEFAULT_CERTS_DIRS. */
  certsDirs?: string[];
}

export interface TlsFiles {
  ca: string[];
  cert?: string;
  key?: string;
}

function proxyConfigured(env: NodeJS.ProcessEnv): boolean {
  return ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((k) => (env[k] ?? '') !== '');
}

/** The CA and client certificates configured for `hostport` (undefined when there are none). */
export async function tlsFilesFor(hostport: string, certsDirs: string[]): Promise<TlsFiles | undefined> {
  const names = [hostport];
  const bare = hostport.replace(/:[0-9]+$/, '');
  if (bare !== hostport) names.push(bare);
  for (const root of certsDirs) {
    for (const name of names) {
      const dir = join(root, name);
      let entries: string[];
      try {
        entries = (await readdir(dir)).sort();
      } catch (err) {
        if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) continue;
        throw fail('EINVAL', `read registry certificates ${dir}: ${messageOf(err)}`, err);
      }
      const files: TlsFiles = { ca: [] };
      const read = async (f: string): Promise<string> => {
        try {
          return await readFile(join(dir, f), 'utf8');
        } catch (err) {
          throw fail('EINVAL', `read registry certificate ${join(dir, f)}: ${messageOf(err)}`, err);
        }
      };
      for (const f of entries) {
        if (f.endsWith('.crt')) files.ca.push(await read(f));
        else if (f.endsWith('.cert')) {
          const key = f.slice(0, -5) + '.key';
          if (!entries.includes(key)) throw fail('EINVAL', `registry client certificate ${join(dir, f)} has no ${key} beside it`);
          files.cert = await read(f);
          files.key = await read(key);
        }
      }
      if (files.ca.length > 0 || files.cert !== undefined) return files;
    }
  }
  return undefined;
}

export class Transport {
  readonly #o: TransportOptions;
  readonly #env: NodeJS.ProcessEnv;
  #default: Promise<Closable> | undefined;
  readonly #perHost = new Map<string, Promise<Closable | undefined>>();

  constructor(o: TransportOptions) {
    this.#o = o;
    this.#env = o.env ?? process.env;
  }

  #certsDirs(): string[] {
    if (this.#o.certsDirs) return this.#o.certsDirs;
    const v = this.#env.TSPOD_CERTS_D;
    return v ? v.split(':').filter(Boolean) : DEFAULT_CERTS_DIRS;
  }

  async #make(connect?: Record<string, unknown>): Promise<Closable> {
    const undici = await loadUndici();
    const connections = this.#o.connections;
    if (proxyConfigured(this.#env)) {
      const e = this.#env;
      const pick = (...keys: string[]): string | undefined => keys.map((k) => e[k]).find((v) => v !== undefined && v !== '');
      const httpProxy = pick('http_proxy', 'HTTP_PROXY');
      const httpsProxy = pick('https_proxy', 'HTTPS_PROXY') ?? httpProxy;
      const noProxy = pick('no_proxy', 'NO_PROXY');
      return new undici.EnvHttpProxyAgent({
        connections,
        ...(httpProxy !== undefined ? { httpProxy } : {}),
        ...(httpsProxy !== undefined ? { httpsProxy } : {}),
        ...(noProxy !== undefined ? { noProxy } : {}),
        ...(connect ? { connect, requestTls: connect } : {}),
      }) as unknown as Closable;
    }
    return new undici.Agent({ connections, ...(connect ? { connect } : {}) });
  }

  /**
   * The dispatcher for a request to `url` (redirects it leads to travel on the same one).
   * `tlsVerify: false` (an insecure registry) accepts any certificate from that host.
   */
  async dispatcherFor(url: URL | string, opts: { tlsVerify?: boolean } = {}): Promise<Dispatcher> {
    const u = typeof url === 'string' ? new URL(url) : url;
    if (u.protocol === 'https:' && opts.tlsVerify === false) {
      let p = this.#perHost.get('insecure ' + u.host);
      if (!p) {
        p = this.#make({ rejectUnauthorized: false });
        this.#perHost.set('insecure ' + u.host, p);
      }
      return (await p)!;
    }
    if (u.protocol === 'https:') {
      let p = this.#perHost.get(u.host);
      if (!p) {
        p = tlsFilesFor(u.host, this.#certsDirs()).then((files) =>
          files
            ? this.#make({
              ca: [...rootCertificates, ...files.ca],
              ...(files.cert !== undefined ? { cert: files.cert, key: files.key } : {}),
            })
            : undefined);
        this.#perHost.set(u.host, p);
      }
      const d = await p;
      if (d) return d;
    }
    this.#default ??= this.#make();
    return this.#default;
  }

  async close(): Promise<void> {
    const all = [this.#default, ...this.#perHost.values()];
    await Promise.all(all.map(async (p) => {
      const d = await p?.catch(() => undefined);
      await d?.close();
    }));
  }
}

/**
 * undici: when the CLI runs through bin/tspod.js, its bundle dist/undici.cjs compiled with a code cache
 * (≈ 30 ms instead of ≈ 85–105 ms of a pull's start); otherwise (the library, tests) the package itself.
 */
async function loadUndici(): Promise<UndiciUsed> {
  const hook = (globalThis as Record<symbol, unknown>)[Symbol.for('tspod.undici')] as (() => UndiciUsed | undefined) | undefined;
  return hook?.() ?? (await import('undici'));
}

/** What the client takes from undici: all that dist/undici.cjs exports (scripts/bundle-cli.mjs; add there too). */
type UndiciUsed = Pick<typeof import('undici'), 'Agent' | 'EnvHttpProxyAgent'>;
