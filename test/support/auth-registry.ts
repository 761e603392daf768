// A second real docker-registry on loopback with authentication, for login/pull tests:
//   - mode 'token': the registry trusts RS256 JWTs signed by a token server written here with node:crypto
//     (its x5c certificate, made by openssl, is the registry's rootcertbundle). The token server grants
//     `pull` on every repository outside private/ to anyone, and everything to USER (Basic password or
//     the OAuth2 refresh token REFRESH_TOKEN); wrong credentials get 401.
//   - mode 'htpasswd': the registry's own Basic auth with a bcrypt (cost 4) htpasswd file.
// Images are copied in from the fixture registry with skopeo (which authenticates like any client).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSign, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const USER = 'alice';
export const PASSWORD = 'correct horse battery staple';
export const REFRESH_TOKEN = 'alice-refresh-token-0123456789';
const SERVICE = 'tspod-auth-registry';
const ISSUER = 'tspod-auth-issuer';

export interface AuthRegistry {
  host: string;
  url: string;
  /** Token requests the token server saw (mode 'token'). */
  tokenRequests: { scopes: string[]; user: string | undefined; method: string }[];
  /** Copies `docker://fromHost/src` into this registry as `dest`, authenticating as USER. */
  copyIn(from: string, dest: string): Promise<void>;
  stop(): Promise<void>;
}

export function haveAuthRegistryTools(): string | undefined {
  for (const [cmd, arg] of [['openssl', 'version'], ['docker-registry', '--version'], ['skopeo', '--version'], ['python3', '--version']] as const) {
    if (spawnSync(cmd, [arg]).status !== 0) return `needs ${cmd}`;
  }
  return undefined;
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Runs a command, rejecting with its stderr when it fails (killed after 2 minutes). */
export function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr!.on('data', (d) => (stderr += String(d)));
    const timer = setTimeout(() => p.kill('SIGKILL'), 120_000);
    p.once('error', (e) => (clearTimeout(timer), reject(e)));
    p.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')}: exit ${code ?? signal}: ${stderr.trim()}`));
    });
  });
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

function signToken(key: string, certDer: Buffer, scopes: string[], user: string | undefined): string {
  const now = Math.floor(Date.now() / 1000);
  const access = scopes
    .map((s) => s.split(':'))
    .filter((p) => p.length >= 3 && p[0] === 'repository')
    .map((p) => ({ type: 'repository', name: p.slice(1, -1).join(':'), actions: p.at(-1)!.split(',') }))
    .map((a) => (user === USER ? a : { ...a, actions: a.name.startsWith('private/') ? [] : a.actions.filter((x) => x === 'pull') }))
    .filter((a) => a.actions.length > 0);
  const header = { alg: 'RS256', typ: 'JWT', x5c: [certDer.toString('base64')] };
  const claims = { iss: ISSUER, sub: user ?? '', aud: SERVICE, exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const sig = createSign('RSA-SHA256').update(input).sign(key);
  return `${input}.${b64url(sig)}`;
}

export async function startAuthRegistry(mode: 'token' | 'htpasswd'): Promise<AuthRegistry> {
  const dir = mkdtempSync(join(tmpdir(), `tspod-auth-registry-${mode}-`));
  const tokenRequests: AuthRegistry['tokenRequests'] = [];
  let tokenServer: Server | undefined;
  let proc: ChildProcess | undefined;
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const authLines: string[] = [];
  try {
    if (mode === 'token') {
      const keyFile = join(dir, 'key.pem');
      const certFile = join(dir, 'cert.pem');
      const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile,
        '-days', '1', '-subj', '/CN=tspod-test-token-issuer']);
      if (gen.status !== 0) throw new Error(`openssl req: ${gen.stderr}`);
      const key = readFileSync(keyFile, 'utf8');
      const certDer = Buffer.from(readFileSync(certFile, 'utf8').replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, ''), 'base64');
      tokenServer = createHttpServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const url = new URL(req.url ?? '/', 'http://127.0.0.1');
          let scopes = url.searchParams.getAll('scope');
          let user: string | undefined;
          let refused = false;
          if (req.method === 'POST') {
            const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
            scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
            if (form.get('grant_type') === 'refresh_token' && form.get('refresh_token') === REFRESH_TOKEN) user = USER;
            else refused = true;
          } else {
            const auth = req.headers.authorization;
            if (auth) {
              const [u, ...rest] = Buffer.from(auth.replace(/^Basic /i, ''), 'base64').toString('utf8').split(':');
              if (u === USER && rest.join(':') === PASSWORD) user = USER;
              else refused = true;
            }
          }
          tokenRequests.push({ scopes, user, method: req.method ?? 'GET' });
          if (refused) {
            res.writeHead(401, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] }));
            return;
          }
          const token = signToken(key, certDer, scopes, user);
          res.writeHead(200, { 'content-type': 'application/json' });
          // access_token only for the POST (OAuth2) answer; both for GET, as Docker Hub does
          res.end(JSON.stringify(req.method === 'POST' ? { access_token: token, expires_in: 300 } : { token, access_token: token, expires_in: 300 }));
        });
      });
      await new Promise<void>((r) => tokenServer!.listen(0, '127.0.0.1', () => r()));
      const tokenPort = (tokenServer.address() as { port: number }).port;
      authLines.push('auth:', '  token:', `    realm: http://127.0.0.1:${tokenPort}/token`, `    service: ${SERVICE}`,
        `    issuer: ${ISSUER}`, `    rootcertbundle: ${certFile}`);
    } else {
      const hash = spawnSync('python3', ['-W', 'ignore', '-c',
        'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))', PASSWORD], { encoding: 'utf8' });
      if (hash.status !== 0 || !hash.stdout.startsWith('$2')) throw new Error(`bcrypt via python3 crypt: ${hash.stderr}`);
      const htpasswd = join(dir, 'htpasswd');
      writeFileSync(htpasswd, `${USER}:${hash.stdout.trim()}\n`);
      authLines.push('auth:', '  htpasswd:', '    realm: tspod-test', `    path: ${htpasswd}`);
    }
    const config = join(dir, 'registry.yml');
    writeFileSync(config, ['version: 0.1', 'log:', '  level: warn', 'storage:', '  filesystem:', `    rootdirectory: ${join(dir, 'data')}`,
      'http:', `  addr: ${host}`, ...authLines, ''].join('\n'));
    proc = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += String(d)));
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://${host}/v2/`).then((r) => r.status === 401, () => false);
      if (ok) break;
      if (i > 100 || proc.exitCode !== null) throw new Error(`docker-registry did not start: ${stderr.slice(-500)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    proc?.kill('SIGKILL');
    tokenServer?.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    host,
    url: `http://${host}`,
    tokenRequests,
    copyIn: (from, dest) => run('skopeo', ['copy', '--quiet', '--insecure-policy', '--src-tls-verify=false', '--dest-tls-verify=false',
      '--dest-creds', `${USER}:${PASSWORD}`, `docker://${from}`, `docker://${host}/${dest}`]),
    async stop() {
      if (proc && proc.exitCode === null) {
        const exited = new Promise((r) => proc!.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
      if (tokenServer) {
        tokenServer.closeAllConnections();
        await new Promise<void>((r) => tokenServer!.close(() => r()));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
