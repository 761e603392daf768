/**
 * login / logout: verify credentials against the registry, then store them (credentials.ts says where);
 * logout removes them. The password is only ever in memory, the credentials file (0600) or a helper's stdin.
 */
import type { EngineConfig } from '../config/index.js';
import { RegistryClient } from '../registry/client.js';
import { eraseCredentials, normalizeAuthKey, staticCredentials, storeCredentials, type CredentialEnv } from '../registry/credentials.js';
import { fail } from '../util/errors.js';

export interface LoginResult {
  registry: string;
  /** The file or credential helper the login was stored in. */
  storedIn: string;
}

/** "https://Host:5000/v2/" → "host:5000"; "index.docker.io", "" → "docker.io". EINVAL for garbage. */
export function loginRegistry(s: string | undefined): string {
  const r = normalizeAuthKey(s ?? 'docker.io');
  if (r === '' || !/^[a-z0-9.-]+(:[0-9]+)?$|^\[[0-9a-f:]+\](:[0-9]+)?$/.test(r)) {
    throw fail('EINVAL', `login: invalid registry "${s}": want a host or host:port, e.g. registry.example.com:5000`);
  }
  return r;
}

export async function loginRegistryWith(registryText: string | undefined, username: string, password: string,
  opts: { config: EngineConfig; credentialEnv?: CredentialEnv }): Promise<LoginResult> {
  const registry = loginRegistry(registryText);
  if (username === '') throw fail('EINVAL', `login ${registry}: username is empty`);
  if (password === '') throw fail('EINVAL', `login ${registry}: password is empty`);
  const creds = { username, password };
  const client = new RegistryClient({ config: opts.config });
  try {
    await client.checkLogin(registry, staticCredentials(registry, creds));
  } finally {
    await client.close();
  }
  const storedIn = await storeCredentials(registry, creds, opts.credentialEnv);
  return { registry, storedIn };
}

/** Removes the stored login; false when there was none. */
export async function logoutRegistry(registryText: string | undefined, opts: { credentialEnv?: CredentialEnv } = {}): Promise<{ registry: string; removed: boolean }> {
  const registry = loginRegistry(registryText);
  return { registry, removed: await eraseCredentials(registry, opts.credentialEnv) };
}
