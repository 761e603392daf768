// A small HTTP server in FRONT of a real registry (the fixture docker-registry) that forwards every
// request and, when a rule says so, injects a fault a real server would not produce on demand:
// a status (429 with Retry-After, 503), a redirect, a connection cut after N body bytes, a corrupted
// body, a replaced body (a schema 1 manifest), or a slow (throttled) body. Every request is logged
// with what was actually sent, so tests can check e.g. that a resume asked for a Range and that no
// byte was sent twice.
import { performance } from 'node:perf_hooks';
import { request as httpRequest, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface ProxyRequest {
  method: string;
  path: string;
  range?: string;
  authorization?: string;
  /** nth request for the same method+path, from 1. */
  nth: number;
}

export type Action =
  | { kind: 'respond'; status: number; headers?: Record<string, string>; body?: string | Buffer }
  | { kind: 'redirect'; location: string; status?: number }
  /** forward, but destroy the socket after this many body bytes */
  | { kind: 'cut'; afterBytes: number }
  /** forward with one byte of the body flipped */
  | { kind: 'corrupt' }
  /** forward, delivering the body in `chunk`-byte pieces every `delayMs` */
  | { kind: 'throttle'; chunk: number; delayMs: number };

export interface LogEntry extends ProxyRequest {
  status: number;
  /** Body bytes written to the client. */
  bytesSent: number;
  action?: Action['kind'];
  /** When the request arrived and when its response was finished or aborted (ms, monotonic). */
  start: number;
  end?: number;
}

/** The largest number of logged requests matching `match` that were in flight at the same time. */
export function maxInFlight(log: LogEntry[], match: (e: LogEntry) => boolean): number {
  const events = log.filter(match).flatMap((e) => [[e.start, 1], [e.end ?? Infinity, -1]] as const)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let max = 0;
  for (const [, d] of events) max = Math.max(max, (cur += d));
  return max;
}

export interface FaultProxy {
  url: string;
  host: string;
  log: LogEntry[];
  /** Decides per request; undefined → forward unchanged. Replace at will between tests. */
  rule: (r: ProxyRequest) => Action | undefined;
  /** Clears the log and the per-path request counts (nth starts at 1 again). */
  reset(): void;
  close(): Promise<void>;
}

export async function startFaultProxy(upstream: string, opts: { host?: string } = {}): Promise<FaultProxy> {
  const up = new URL(upstream);
  const counts = new Map<string, number>();
  const proxy: FaultProxy = {
    url: '', host: '', log: [], rule: () => undefined, close: async () => {},
    reset() {
      proxy.log.length = 0;
      counts.clear();
    },
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const key = `${req.method} ${req.url}`;
    const nth = (counts.get(key) ?? 0) + 1;
    counts.set(key, nth);
    const info: ProxyRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      nth,
      ...(req.headers.range ? { range: req.headers.range } : {}),
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    };
    const entry: LogEntry = { ...info, status: 0, bytesSent: 0, start: performance.now() };
    proxy.log.push(entry);
    // The request ends when res.end() is called: the client cannot have the last byte before that.
    // ('finish' comes later, and the client, in this same process, may already have started its
    // next request by then, which would count as one request too many in flight.)
    const ended = (): void => { entry.end ??= performance.now(); };
    const end = res.end.bind(res);
    res.end = ((...args: Parameters<typeof end>) => { ended(); return end(...args); }) as typeof res.end;
    res.once('close', ended);
    const action = proxy.rule(info);
    if (action) entry.action = action.kind;
    if (action?.kind === 'respond') {
      entry.status = action.status;
      const body = action.body ?? '';
      entry.bytesSent = Buffer.byteLength(body);
      res.writeHead(action.status, { 'content-length': String(Buffer.byteLength(body)), ...action.headers });
      res.end(body);
      return;
    }
    if (action?.kind === 'redirect') {
      entry.status = action.status ?? 307;
      res.writeHead(entry.status, { location: action.location, 'content-length': '0' });
      res.end();
      return;
    }
    const headers = { ...req.headers, host: up.host };
    const upReq = httpRequest({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers }, (upRes) => {
      entry.status = upRes.statusCode ?? 0;
      const outHeaders = { ...upRes.headers };
      // redirects from the registry itself must come back through us
      if (typeof outHeaders.location === 'string') outHeaders.location = outHeaders.location.replace(up.origin, proxy.url);
      res.writeHead(upRes.statusCode ?? 502, outHeaders);
      let flipped = false;
      const length = Number(upRes.headers['content-length']);
      const queue: Buffer[] = [];
      let draining = false;
      let ended = false;
      const send = (b: Buffer): boolean => {
        if (action?.kind === 'cut' && entry.bytesSent + b.length >= action.afterBytes) {
          const n = action.afterBytes - entry.bytesSent;
          entry.bytesSent += Math.max(0, n);
          upRes.destroy();
          // cut once those bytes are handed to the kernel (destroying at once would drop them unsent)
          res.write(n > 0 ? b.subarray(0, n) : Buffer.alloc(0), () => res.socket?.destroy());
          return false;
        }
        if (action?.kind === 'corrupt' && !flipped && b.length > 0) {
          b = Buffer.from(b);
          b[Math.floor(b.length / 2)]! ^= 0xff;
          flipped = true;
        }
        entry.bytesSent += b.length;
        res.write(b);
        // With the last byte written, the client has all it needs (a throttled response calls
        // res.end() only after one more delay): the request is over for the in-flight count.
        if (Number.isFinite(length) && entry.bytesSent >= length) entry.end ??= performance.now();
        return true;
      };
      if (action?.kind === 'throttle') {
        const pump = (): void => {
          if (res.destroyed) { upRes.destroy(); return; }
          const b = queue.shift();
          if (!b) {
            draining = false;
            if (ended) res.end();
            else upRes.resume();
            return;
          }
          const now = b.subarray(0, action.chunk);
          if (b.length > action.chunk) queue.unshift(b.subarray(action.chunk));
          send(now);
          setTimeout(pump, action.delayMs);
        };
        upRes.on('data', (b: Buffer) => {
          queue.push(b);
          upRes.pause();
          if (!draining) {
            draining = true;
            pump();
          }
        });
        upRes.on('end', () => {
          ended = true;
          if (!draining) res.end();
        });
        res.on('close', () => upRes.destroy());
        return;
      }
      upRes.on('data', (b: Buffer) => {
        send(b);
      });
      upRes.on('end', () => res.end());
      upRes.on('error', () => res.destroy());
    });
    upReq.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(upReq);
  });
  const bindHost = opts.host ?? '127.0.0.1';
  await new Promise<void>((r) => server.listen(0, bindHost, () => r()));
  const port = (server.address() as { port: number }).port;
  proxy.host = `${bindHost}:${port}`;
  proxy.url = `http://${proxy.host}`;
  proxy.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return proxy;
}

/** Blob GETs in the log for a digest. */
export function blobRequests(log: LogEntry[], digest: string): LogEntry[] {
  return log.filter((e) => e.method === 'GET' && e.path.endsWith(`/blobs/${digest}`));
}
