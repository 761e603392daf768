/**
 * Registry authentication: the anonymous (or credentialed) bearer-token flow of the distribution token
 * spec, and Basic when the registry asks for it. Tokens are cached per origin+scope, honouring expires_in.
 */
import type { Dispatcher } from 'undici';
import { LRUCache } from 'lru-cache';
import { fail, messageOf } from '../util/errors.js';
import { errorFromResponse, readCapped, send, withRetry, type RetryPolicy } from './http.js';

export interface Credentials {
  username: string;
  password: string;
  /** An OAuth2 refresh token (docker's `identitytoken`): exchanged at the token realm with a POST. */
  identityToken?: string;
}

/**
 * Scopes (distribution token spec): `repository:NAME:ACTIONS`. A pull asks for `pullScopes(repo)`; a push
 * asks for `pushScopes(target, [mountSource…])`, i.e. `pull,push` on the target and `pull` on each
 * repository a blob is mounted from, all in ONE token request. Pass them to RegistryClient.request().
 */
export function pullScopes(repository: string): string[] {
  return [`repository:${repository}:pull`];
}

export function pushScopes(repository: string, mountSources: string[] = []): string[] {
  const out = [`repository:${repository}:pull,push`];
  for (const m of mountSources) if (m !== repository && !out.includes(`repository:${m}:pull`)) out.push(`repository:${m}:pull`);
  return out;
}

/** Where credentials come from (credentials.ts: docker config.json, auth.json, helpers). */
export interface CredentialSource {
  get(registry: string): Promise<Credentials | undefined>;
}

/** The default: anonymous everywhere. */
export const noCredentials: CredentialSource = { get: async () => undefined };

export interface Challenge {
  scheme: string; // lowercased: "bearer", "basic"
  params: Record<string, string>;
}

/**
 * Parses WWW-Authenticate (RFC 7235): `Bearer realm="…",service="…",scope="…"`. Several challenges may
 * share one header; each starts with a scheme token not followed by '='.
 */
export function parseChallenges(value: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const s = value;
  const skipWs = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
  };
  const token = () => {
    const m = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/.exec(s.slice(i));
    if (!m) return '';
    i += m[0].length;
    return m[0];
  };
  while (i < s.length) {
    skipWs();
    const scheme = token();
    if (scheme === '') break;
    const ch: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(ch);
    for (;;) {
      const save = i;
      skipWs();
      const key = token();
      while (s[i] === ' ') i++;
      if (key === '' || s[i] !== '=') {
        i = save; // a new scheme (or the end)
        break;
      }
      i++; // '='
      while (s[i] === ' ') i++;
      let val = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          val += s[i++];
        }
        i++; // closing quote
      } else {
        val = token();
      }
      ch.params[key.toLowerCase()] = val;
    }
    if (i === s.length) break;
    // guard against no progress on garbage
    if (!/[\s,]/.test(s[i] ?? '') && token() === '') break;
  }
  return out;
}

export interface AuthOptions {
  dispatcher: (url: URL) => Promise<Dispatcher>;
  credentials: CredentialSource;
  retry: RetryPolicy;
  userAgent: string;
  onTokenRequest?: () => void;
}

/** Default token lifetime when the token server does not say (distribution token spec: 60 s). */
const DEFAULT_EXPIRES_S = 60;

export class Authenticator {
  readonly #cache = new LRUCache<string, string>({ max: 512 });
  readonly #opts: AuthOptions;

  constructor(opts: AuthOptions) {
    this.#opts = opts;
  }

  /** The Authorization value we already hold for this origin and scope(s), if any. */
  cached(origin: string, scope: string | string[]): string | undefined {
    return this.#cache.get(cacheKey(origin, scope));
  }

  /** Forgets a value the registry refused. */
  forget(origin: string, scope: string | string[]): void {
    this.#cache.delete(cacheKey(origin, scope));
  }

  /**
   * Answers a 401 challenge from `origin` for `scope`; returns the Authorization header value to retry with.
   * EAUTH when the challenge cannot be met (Basic without credentials, token server refusing, unknown scheme).
   */
  async respond(what: string, origin: string, registry: string, wwwAuthenticate: string | undefined, scope: string | string[],
    opts: { cache?: boolean } = {}): Promise<string> {
    const challenges = parseChallenges(wwwAuthenticate ?? '');
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    const creds = await this.#opts.credentials.get(registry);
    let value: string;
    let ttlMs: number | undefined;
    if (bearer) {
      ({ value, ttlMs } = await this.#token(what, bearer, scope, creds));
    } else if (basic) {
      if (!creds || (creds.username === '' && creds.password === '')) {
        throw fail('EAUTH', `${what}: ${origin} requires a username and password (no credentials for ${registry}; run tspod login ${registry})`);
      }
      value = 'Basic ' + Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
    } else {
      throw fail('EAUTH', `${what}: ${origin} answered 401 without a usable WWW-Authenticate challenge`);
    }
    if (opts.cache !== false) this.#cache.set(cacheKey(origin, scope), value, ttlMs === undefined ? undefined : { ttl: ttlMs });
    return value;
  }

  async #token(what: string, ch: Challenge, scope: string | string[], creds: Credentials | undefined): Promise<{ value: string; ttlMs: number }> {
    const realm = ch.params.realm;
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw fail('EAUTH', `${what}: bearer challenge without a valid realm (${JSON.stringify(realm)})`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw fail('EAUTH', `${what}: token realm ${realm} is not http(s)`);
    if (ch.params.service) url.searchParams.set('service', ch.params.service);
    const scopes = new Set(mergeScopes([...(typeof scope === 'string' ? (scope ? [scope] : []) : scope),
      ...(ch.params.scope ?? '').split(' ').filter(Boolean)]));

    const headers: Record<string, string> = { 'user-agent': this.#opts.userAgent, accept: 'application/json' };
    let authorization: string | undefined;
    let body: string | undefined;
    if (creds?.identityToken) {
      // OAuth2 refresh-token grant (docker's identitytoken), POSTed as a form
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'tspod' });
      if (ch.params.service) form.set('service', ch.params.service);
      if (scopes.size > 0) form.set('scope', [...scopes].join(' '));
      body = form.toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else {
      for (const s of scopes) url.searchParams.append('scope', s);
      if (creds && (creds.username !== '' || creds.password !== '')) {
        authorization = 'Basic ' + Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
      }
    }
    const dispatcher = await this.#opts.dispatcher(url);
    const tokenWhat = `${what}: get token from ${url.origin}${url.pathname}`;
    const res = await withRetry(tokenWhat, this.#opts.retry, () => {
      this.#opts.onTokenRequest?.();
      return send(dispatcher, url, { method: body !== undefined ? 'POST' : 'GET', body, headers, authorization, authOrigin: url.origin });
    });
    if (res.status !== 200) {
      const e = await errorFromResponse(tokenWhat, res, 'token endpoint not found');
      const why = res.status === 401 || res.status === 403
        ? `${tokenWhat}: ${creds ? 'the registry refused the credentials' : 'access denied'} (HTTP ${res.status})`
        : e.message;
      throw fail('EAUTH', why);
    }
    const bytes = await readCapped(res.body, 1 << 20, () => fail('EAUTH', `${tokenWhat}: response too large`));
    let json: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw fail('EAUTH', `${tokenWhat}: invalid JSON: ${messageOf(err)}`, err);
    }
    const token = typeof json.token === 'string' && json.token !== '' ? json.token : json.access_token;
    if (typeof token !== 'string' || token === '') throw fail('EAUTH', `${tokenWhat}: response has no token`);
    const expires = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : DEFAULT_EXPIRES_S;
    // renew a little early so a token does not expire between our check and the registry's
    const ttlMs = Math.max(1, expires - Math.min(10, expires / 4)) * 1000;
    return { value: `Bearer ${token}`, ttlMs };
  }
}

function cacheKey(origin: string, scope: string | string[]): string {
  return `${origin} ${typeof scope === 'string' ? scope : [...scope].sort().join(' ')}`;
}

/**
 * One scope per resource with the union of its actions, first-seen order: the challenge's
 * `repository:a:pull` and our `repository:a:pull,push` become `repository:a:pull,push`.
 */
export function mergeScopes(scopes: string[]): string[] {
  const byResource = new Map<string, string[]>();
  const other: string[] = [];
  for (const s of scopes) {
    const i = s.lastIndexOf(':');
    const j = s.indexOf(':');
    if (i <= j) {
      if (!other.includes(s)) other.push(s);
      continue;
    }
    const key = s.slice(0, i);
    const actions = byResource.get(key) ?? [];
    for (const a of s.slice(i + 1).split(',')) if (a && !actions.includes(a)) actions.push(a);
    byResource.set(key, actions);
  }
  return [...[...byResource].map(([k, a]) => `${k}:${a.join(',')}`), ...other];
}
