/**
 * Credentials for registries, from the files docker and podman users already have:
 *
 *   1. $REGISTRY_AUTH_FILE, else containers' auth.json (${XDG_RUNTIME_DIR}/containers/auth.json, then
 *      ~/.config/containers/auth.json), as podman/skopeo read them;
 *   2. docker's config.json ($DOCKER_CONFIG/config.json, default ~/.docker/config.json).
 *
 * In each file: `credHelpers[registry]` → `docker-credential-NAME get`; else `auths[registry]` with
 * `auth` (base64 "user:password"), `username`/`password`, or `identitytoken` (an OAuth2 refresh token);
 * else `credsStore` → `docker-credential-NAME get`. The first file that knows the registry wins.
 * Keys are matched as docker does: "https://index.docker.io/v1/" and "docker.io" name Docker Hub; a URL
 * key ("https://host:5000/v1/") matches its host.
 *
 * `tspod login` writes to $REGISTRY_AUTH_FILE when it is set, else to docker's config.json (so `docker`
 * and tspod share one login, as a docker user expects); through the file's credential helper when it
 * names one. Passwords travel only through files (mode 0600) and helper stdin, never argv.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { isDockerHub } from '../reference/index.js';
import { fail, isErrno, messageOf } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import type { CredentialSource, Credentials } from './auth.js';

/** Docker Hub's key in config.json, as docker writes it. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

export interface CredentialEnv {
  env?: NodeJS.ProcessEnv;
  /** Default: os.homedir(). */
  home?: string;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

interface AuthFile {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [k: string]: unknown;
}

/** The files read, in order. */
export function credentialFiles(o: CredentialEnv = {}): string[] {
  const env = o.env ?? process.env;
  const home = o.home ?? env.HOME ?? homedir();
  const files: string[] = [];
  if (env.REGISTRY_AUTH_FILE) {
    files.push(env.REGISTRY_AUTH_FILE);
  } else {
    if (env.XDG_RUNTIME_DIR) files.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
    files.push(join(env.XDG_CONFIG_HOME || join(home, '.config'), 'containers', 'auth.json'));
  }
  files.push(dockerConfigFile(o));
  return files;
}

export function dockerConfigFile(o: CredentialEnv = {}): string {
  const env = o.env ?? process.env;
  const home = o.home ?? env.HOME ?? homedir();
  return join(env.DOCKER_CONFIG || join(home, '.docker'), 'config.json');
}

/** The file `tspod login` writes: $REGISTRY_AUTH_FILE, else docker's config.json. */
export function loginFile(o: CredentialEnv = {}): string {
  const env = o.env ?? process.env;
  return env.REGISTRY_AUTH_FILE || dockerConfigFile(o);
}

/** "https://host:5000/v1/" → "host:5000"; "index.docker.io" / "registry-1.docker.io" → "docker.io". */
export function normalizeAuthKey(key: string): string {
  let k = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  k = k.split('/')[0]!.toLowerCase();
  if (isDockerHub(k) || k === 'registry-1.docker.io') return 'docker.io';
  return k;
}

/** The key a login for `registry` is stored under. */
export function authKeyFor(registry: string): string {
  return normalizeAuthKey(registry) === 'docker.io' ? DOCKER_HUB_AUTH_KEY : registry;
}

async function readAuthFile(path: string): Promise<AuthFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined;
    throw fail('EINVAL', `read credentials ${path}: ${messageOf(err)}`, err);
  }
  if (text.trim() === '') return {};
  try {
    const json = JSON.parse(text) as unknown;
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('want a JSON object');
    return json as AuthFile;
  } catch (err) {
    throw fail('EINVAL', `read credentials ${path}: invalid JSON: ${messageOf(err)}`, err);
  }
}

function findKey<T>(map: Record<string, T> | undefined, registry: string): T | undefined {
  if (!map || typeof map !== 'object') return undefined;
  const want = normalizeAuthKey(registry);
  if (Object.hasOwn(map, registry)) return map[registry];
  for (const [k, v] of Object.entries(map)) if (normalizeAuthKey(k) === want) return v;
  return undefined;
}

function decodeEntry(e: AuthEntry, registry: string, file: string): Credentials | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  let username = typeof e.username === 'string' ? e.username : '';
  let password = typeof e.password === 'string' ? e.password : '';
  if (typeof e.auth === 'string' && e.auth !== '') {
    const plain = Buffer.from(e.auth, 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    if (colon < 0) throw fail('EINVAL', `read credentials ${file}: the auth entry for ${registry} is not base64 of "user:password"`);
    username = plain.slice(0, colon);
    password = plain.slice(colon + 1);
  }
  const identityToken = typeof e.identitytoken === 'string' && e.identitytoken !== '' ? e.identitytoken : undefined;
  if (identityToken) return { username, password, identityToken };
  if (username === '' && password === '') return undefined;
  return { username, password };
}

/** Runs `docker-credential-NAME ACTION` with `input` on stdin; the secret never appears in argv. */
export function runCredentialHelper(name: string, action: 'get' | 'store' | 'erase', input: string, env?: NodeJS.ProcessEnv): Promise<string> {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) return Promise.reject(fail('EINVAL', `credential helper name "${name}" is invalid`));
  const program = `docker-credential-${name}`;
  return new Promise((resolve, reject) => {
    const child = spawn(program, [action], { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.stdin.on('error', () => { /* the helper exited early; its status says why */ });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(fail('EAUTH', `credential helper ${program}: ${isErrno(e, 'ENOENT') ? 'not found in PATH' : messageOf(e)}`, e));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else {
        // helpers print their error on stdout (docker-credential-helpers) or stderr
        const why = (out.trim() || err.trim()).split('\n')[0] || `exit ${code ?? signal}`;
        const e = fail('EAUTH', `credential helper ${program} ${action}: ${why}`);
        (e as { helperOutput?: string }).helperOutput = why;
        reject(e);
      }
    });
    child.stdin.end(input);
  });
}

async function helperGet(name: string, registry: string): Promise<Credentials | undefined> {
  const serverUrl = authKeyFor(registry);
  let out: string;
  try {
    out = await runCredentialHelper(name, 'get', serverUrl);
  } catch (err) {
    if (/credentials not found/i.test((err as { helperOutput?: string }).helperOutput ?? '')) return undefined;
    throw err;
  }
  let json: { Username?: unknown; Secret?: unknown };
  try {
    json = JSON.parse(out) as typeof json;
  } catch {
    throw fail('EAUTH', `credential helper docker-credential-${name} get: output is not JSON`);
  }
  const username = typeof json.Username === 'string' ? json.Username : '';
  const secret = typeof json.Secret === 'string' ? json.Secret : '';
  if (secret === '') return undefined;
  // docker's convention: the user "<token>" means the secret is an identity (refresh) token
  if (username === '<token>') return { username: '', password: '', identityToken: secret };
  return { username, password: secret };
}

/** Credentials for `registry` from the first file that knows it (see the module comment). */
export async function lookupCredentials(registry: string, o: CredentialEnv = {}): Promise<Credentials | undefined> {
  for (const file of credentialFiles(o)) {
    const f = await readAuthFile(file);
    if (!f) continue;
    const helper = findKey(f.credHelpers, registry);
    if (typeof helper === 'string' && helper !== '') {
      const c = await helperGet(helper, registry);
      if (c) return c;
      continue;
    }
    const entry = findKey(f.auths, registry);
    if (entry !== undefined) {
      const c = decodeEntry(entry, registry, file);
      if (c) return c;
    }
    if (typeof f.credsStore === 'string' && f.credsStore !== '') {
      const c = await helperGet(f.credsStore, registry);
      if (c) return c;
    }
  }
  return undefined;
}

/** A CredentialSource over the files; each registry is looked up once per process. */
export function fileCredentials(o: CredentialEnv = {}): CredentialSource {
  const cache = new Map<string, Promise<Credentials | undefined>>();
  return {
    get(registry: string) {
      let p = cache.get(registry);
      if (!p) {
        p = lookupCredentials(registry, o);
        cache.set(registry, p);
      }
      return p;
    },
  };
}

/** A fixed answer for one registry (login verifies with the credentials it was given). */
export function staticCredentials(registry: string, creds: Credentials): CredentialSource {
  const want = normalizeAuthKey(registry);
  return { get: async (r) => (normalizeAuthKey(r) === want ? creds : undefined) };
}

/**
 * Stores a login: through the file's credential helper for this registry if it names one, else as
 * `auths[key].auth` in the file. Other keys of the file are kept as they are. Returns where it went.
 */
export async function storeCredentials(registry: string, creds: Credentials, o: CredentialEnv = {}): Promise<string> {
  const file = loginFile(o);
  const f = (await readAuthFile(file)) ?? {};
  const key = authKeyFor(registry);
  const helper = findKey(f.credHelpers, registry) ?? f.credsStore;
  if (typeof helper === 'string' && helper !== '') {
    await runCredentialHelper(helper, 'store', JSON.stringify({ ServerURL: key, Username: creds.username, Secret: creds.password }));
    return `docker-credential-${helper}`;
  }
  const auths: Record<string, AuthEntry> = { ...(f.auths ?? {}) };
  for (const k of Object.keys(auths)) if (normalizeAuthKey(k) === normalizeAuthKey(registry)) delete auths[k];
  auths[key] = { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') };
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, JSON.stringify({ ...f, auths }, null, '\t') + '\n', 0o600);
  return file;
}

/** Removes a login; false when there was none. */
export async function eraseCredentials(registry: string, o: CredentialEnv = {}): Promise<boolean> {
  const file = loginFile(o);
  const f = await readAuthFile(file);
  if (!f) return false;
  let removed = false;
  const helper = findKey(f.credHelpers, registry) ?? f.credsStore;
  if (typeof helper === 'string' && helper !== '') {
    try {
      await runCredentialHelper(helper, 'erase', authKeyFor(registry));
      removed = true;
    } catch (err) {
      if (!/credentials not found/i.test((err as { helperOutput?: string }).helperOutput ?? '')) throw err;
    }
  }
  if (f.auths) {
    const auths = { ...f.auths };
    for (const k of Object.keys(auths)) {
      if (normalizeAuthKey(k) === normalizeAuthKey(registry)) {
        delete auths[k];
        removed = true;
      }
    }
    if (removed) await writeFileAtomic(file, JSON.stringify({ ...f, auths }, null, '\t') + '\n', 0o600);
  }
  return removed;
}
