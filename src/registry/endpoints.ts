/**
 * Where to send a registry request: the mirrors configured for the registry, in order, then the registry
 * itself. Scheme: plain HTTP for loopback hosts and for registries listed in insecureRegistries, else HTTPS.
 */
import type { EngineConfig } from '../config/index.js';
import { isDockerHub, registryApiHost, DEFAULT_REGISTRY } from '../reference/index.js';

export interface Endpoint {
  /** Base URL without trailing slash; requests go to `${base}/v2/…`. */
  base: string;
  /** Origin of `base` ("http://127.0.0.1:5000"): the only origin that receives our Authorization header. */
  origin: string;
  /** The registry this endpoint serves (as in the reference), used to look up credentials. */
  registry: string;
  mirror: boolean;
  /** false for hosts listed in insecureRegistries: https is spoken without verifying the certificate. */
  tlsVerify?: boolean;
  /**
   * An https attempt at an insecure registry before its plain-http endpoint (docker's order): when it
   * cannot be reached over TLS at all (connection error), the next endpoint is tried; an HTTP answer
   * from it is final.
   */
  probe?: boolean;
}

/** Splits "host:port", "[::1]:5000", "host" into the hostname (brackets removed) and the port. */
export function splitHostPort(hostport: string): { hostname: string; port?: string } {
  const m = /^\[([^\]]+)\](?::([0-9]+))?$/.exec(hostport);
  if (m) return m[2] === undefined ? { hostname: m[1]! } : { hostname: m[1]!, port: m[2] };
  const i = hostport.lastIndexOf(':');
  if (i >= 0 && hostport.indexOf(':') === i) return { hostname: hostport.slice(0, i), port: hostport.slice(i + 1) };
  return { hostname: hostport };
}

/** localhost, 127.0.0.0/8 and ::1. */
export function isLoopbackHost(hostport: string): boolean {
  const { hostname } = splitHostPort(hostport);
  const h = hostname.toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  return /^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$/.test(h);
}

/** True if the registry is spoken to over plain HTTP. An insecureRegistries entry without a port covers every port. */
export function isInsecure(registry: string, config: EngineConfig): boolean {
  if (isLoopbackHost(registry)) return true;
  const list = config.insecureRegistries ?? [];
  if (list.includes(registry)) return true;
  const { hostname } = splitHostPort(registry);
  return list.some((e) => splitHostPort(e).port === undefined && splitHostPort(e).hostname === hostname);
}

/** The registry's own API base URL: https://registry-1.docker.io for docker.io. */
export function registryBaseUrl(registry: string, config: EngineConfig): string {
  const host = registryApiHost(registry);
  return `${isInsecure(registry, config) ? 'http' : 'https'}://${host}`;
}

/** True if `host` (host:port of a URL) is listed in insecureRegistries (certificates are not verified). */
export function skipsTlsVerify(host: string, config: EngineConfig): boolean {
  const list = config.insecureRegistries ?? [];
  if (list.includes(host)) return true;
  const { hostname } = splitHostPort(host);
  return list.some((e) => splitHostPort(e).port === undefined && splitHostPort(e).hostname === hostname);
}

/**
 * Mirrors first (in configured order), then the registry. An insecure registry that is not on loopback
 * is tried over https without verification first, then over plain http (as docker does); loopback
 * registries are always plain http.
 */
export function endpointsFor(registry: string, config: EngineConfig): Endpoint[] {
  const mirrors = config.registryMirrors ?? {};
  const key = isDockerHub(registry) ? DEFAULT_REGISTRY : registry;
  const urls = mirrors[key] ?? (isDockerHub(registry) ? mirrors['index.docker.io'] : undefined) ?? [];
  const out: Endpoint[] = urls.map((u) => {
    const base = u.replace(/\/+$/, '').replace(/\/v2$/, '');
    const url = new URL(base);
    return { base, origin: url.origin, registry, mirror: true, tlsVerify: !(url.protocol === 'https:' && skipsTlsVerify(url.host, config)) };
  });
  const base = registryBaseUrl(registry, config);
  if (base.startsWith('http:') && !isLoopbackHost(registry)) {
    const tls = base.replace(/^http:/, 'https:');
    out.push({ base: tls, origin: new URL(tls).origin, registry, mirror: false, tlsVerify: false, probe: true });
  }
  out.push({ base, origin: new URL(base).origin, registry, mirror: false });
  return out;
}
