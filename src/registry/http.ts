/**
 * The small HTTP pieces the registry client is composed of: one exchange with redirects under our own
 * rules, retries with backoff, capped body reads, and registry error bodies turned into messages.
 * undici is only ever imported lazily (≈ 88 ms of start-up); here only its types are used.
 */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { fail, messageOf, TspodError, type ErrorCode } from '../util/errors.js';

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  /** The URL that answered (after redirects). */
  url: URL;
}

export interface SendOptions {
  method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  headers: Record<string, string>;
  /** A request body; a Buffer so that a retry or a 307/308 can send it again. */
  body?: Buffer | string;
  /** Sent only to `authOrigin` (never to a redirect target on another origin). */
  authorization?: string;
  authOrigin?: string;
  maxRedirects?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** First value of a header. */
export function header(res: { headers: HttpResponse['headers'] }, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Drains and discards a body we do not need, so the connection can be reused. */
export async function discard(body: Readable): Promise<void> {
  const dump = (body as { dump?: (o?: { limit: number }) => Promise<void> }).dump;
  try {
    if (typeof dump === 'function') await dump.call(body, { limit: 256 * 1024 });
    else body.destroy();
  } catch {
    /* a body we throw away may fail; nothing to do */
  }
}

/**
 * One request, following redirects ourselves: Authorization goes only to `authOrigin`; a redirect from
 * https to http is refused (the bytes would travel in clear after we asked for a secure channel).
 */
export async function send(dispatcher: Dispatcher, url: URL, opts: SendOptions): Promise<HttpResponse> {
  let current = url;
  let method = opts.method ?? 'GET';
  let body = opts.body;
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.authorization !== undefined && current.origin === opts.authOrigin) headers.authorization = opts.authorization;
    const res = await dispatcher.request({
      origin: current.origin,
      path: current.pathname + current.search,
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
    });
    const location = header(res, 'location');
    if (!REDIRECTS.has(res.statusCode) || location === undefined) {
      return { status: res.statusCode, headers: res.headers, body: res.body, url: current };
    }
    await discard(res.body);
    if (hop >= (opts.maxRedirects ?? 10)) throw fail('EREGISTRY', `GET ${url.href}: too many redirects`);
    let next: URL;
    try {
      next = new URL(location, current);
    } catch (err) {
      throw fail('EREGISTRY', `GET ${current.href}: invalid redirect location "${location}"`, err);
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw fail('EREGISTRY', `GET ${current.href}: refusing redirect to ${next.protocol} URL`);
    }
    if (current.protocol === 'https:' && next.protocol === 'http:') {
      throw fail('EREGISTRY', `GET ${current.href}: refusing redirect from https to http (${next.origin})`);
    }
    // 301/302/303 turn a request with a body into a GET without one, as browsers and curl do
    if (body !== undefined && (res.statusCode === 303 || ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST'))) {
      method = 'GET';
      body = undefined;
    }
    current = next;
  }
}

/** Reads a whole body, failing with `tooBig()` as soon as it exceeds `cap` bytes. */
export async function readCapped(body: Readable, cap: number, tooBig: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      const b = chunk as Buffer;
      total += b.length;
      if (total > cap) throw tooBig();
      chunks.push(b);
    }
  } catch (err) {
    body.destroy();
    throw err;
  }
  return Buffer.concat(chunks, total);
}

export interface RegistryErrorSummary {
  codes: string[];
  text: string;
}

/**
 * Distribution's error body {errors:[{code,message,detail}]} → "manifest unknown", or
 * "denied: requested access to the resource is denied". undefined if the body is not one.
 */
export function summarizeErrorBody(bytes: Buffer): RegistryErrorSummary | undefined {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  const errors = (json as { errors?: unknown })?.errors;
  if (!Array.isArray(errors) || errors.length === 0) return undefined;
  const codes: string[] = [];
  const parts: string[] = [];
  for (const e of errors.slice(0, 5)) {
    const code = typeof e?.code === 'string' ? e.code : '';
    const message = typeof e?.message === 'string' ? e.message.trim() : '';
    if (code) codes.push(code.toUpperCase());
    const words = code.toLowerCase().replace(/_/g, ' ');
    if (message === '' || message.toLowerCase() === words) parts.push(words || 'unknown error');
    else if (words === '') parts.push(message);
    else parts.push(`${words}: ${message}`);
  }
  return { codes, text: [...new Set(parts)].join('; ') };
}

/** Reads (a bounded prefix of) an error response and builds the TspodError for it. */
export async function errorFromResponse(what: string, res: HttpResponse, notFound: string): Promise<TspodError> {
  let bytes: Buffer = Buffer.alloc(0);
  try {
    bytes = await readCapped(res.body, 64 * 1024, () => new Error('error body too large'));
  } catch {
    /* keep what we have: the status alone still tells the story */
  }
  const summary = summarizeErrorBody(bytes);
  const codes = summary?.codes ?? [];
  let code: ErrorCode = 'EREGISTRY';
  if (res.status === 404 || codes.some((c) => c.endsWith('_UNKNOWN'))) code = 'ENOTFOUND';
  else if (res.status === 401 || res.status === 403 || codes.includes('DENIED') || codes.includes('UNAUTHORIZED')) code = 'EAUTH';
  else if (res.status === 429 || codes.includes('TOOMANYREQUESTS')) code = 'ERATELIMIT';
  let text = summary?.text;
  if (text === undefined) {
    if (code === 'ENOTFOUND') text = notFound;
    else if (code === 'EAUTH') text = `access denied (HTTP ${res.status})`;
    else text = `registry answered HTTP ${res.status}`;
  } else if (code === 'EREGISTRY') {
    text = `registry answered HTTP ${res.status}: ${text}`;
  }
  if (code === 'EAUTH') text += ' (the repository may not exist or may require credentials)';
  return fail(code, `${what}: ${text}`);
}

export interface RetryPolicy {
  /** Attempts for connection errors and 5xx, the first included. */
  tries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Total time we are willing to wait on 429 Retry-After for one request. */
  rateLimitBudgetMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { tries: 4, baseDelayMs: 200, maxDelayMs: 5_000, rateLimitBudgetMs: 60_000 };

/** Retry-After: delta seconds or an HTTP date → milliseconds from `now` (undefined if absent or garbage). */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^[0-9]+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

/** Exponential backoff with jitter: base·2^n, scaled by a random factor in [0.5, 1.5), capped. */
export function backoffMs(attempt: number, p: RetryPolicy): number {
  const raw = p.baseDelayMs * 2 ** attempt;
  return Math.min(p.maxDelayMs, raw * (0.5 + Math.random()));
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Runs `attempt` until it yields a response that is neither a connection error, nor a 5xx, nor a 429,
 * within the policy. The final 5xx / connection error / rate limit becomes a TspodError naming `what`.
 */
export async function withRetry(what: string, policy: RetryPolicy, attempt: () => Promise<HttpResponse>): Promise<HttpResponse> {
  let failures = 0;
  let waited429 = 0;
  for (;;) {
    let res: HttpResponse;
    try {
      res = await attempt();
    } catch (err) {
      if (err instanceof TspodError) throw err;
      failures++;
      if (failures >= policy.tries) {
        const code = (err as { code?: string }).code;
        throw fail('ENETWORK', `${what}: ${messageOf(err)}${code ? ` (${code})` : ''} after ${failures} tries`, err);
      }
      await sleep(backoffMs(failures - 1, policy));
      continue;
    }
    if (res.status >= 500) {
      failures++;
      if (failures >= policy.tries) {
        const e = await errorFromResponse(what, res, 'not found');
        throw fail(e.code, `${e.message} after ${failures} tries`);
      }
      await discard(res.body);
      await sleep(backoffMs(failures - 1, policy));
      continue;
    }
    if (res.status === 429) {
      const after = parseRetryAfter(header(res, 'retry-after'));
      const delay = after ?? backoffMs(Math.min(failures + 1, 6), policy);
      if (waited429 + delay > policy.rateLimitBudgetMs) {
        await discard(res.body);
        const hint = after !== undefined ? ` (retry after ${Math.ceil(after / 1000)}s)` : '';
        throw fail('ERATELIMIT', `${what}: rate limited by ${res.url.host}${hint}`);
      }
      await discard(res.body);
      waited429 += delay;
      await sleep(delay);
      continue;
    }
    return res;
  }
}
