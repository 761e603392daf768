/**
 * Seccomp for one container: which profile (tspod's default, unconfined, or a Docker-format JSON
 * file), narrowed to the container's capabilities and the host, compiled to the raw BPF program
 * the launcher installs just before execve.
 */
import { readFile } from 'node:fs/promises';
import { release } from 'node:os';
import { fail, messageOf } from '../../util/errors.js';
import { compileProfile, encodeProgram } from './compile.js';
import { DEFAULT_SECCOMP_PROFILE } from './default.js';
import { nativeArch, parseProfile, type SeccompProfile } from './profile.js';

export { compileProfile, encodeProgram } from './compile.js';
export { DEFAULT_SECCOMP_PROFILE } from './default.js';
export { parseProfile, nativeArch, type SeccompProfile } from './profile.js';

/** `--security-opt seccomp=…`: undefined or "default" for tspod's default, "unconfined", or a profile path. */
export async function loadProfile(setting: string | undefined): Promise<SeccompProfile | undefined> {
  if (setting === undefined || setting === 'default' || setting === 'builtin') return DEFAULT_SECCOMP_PROFILE;
  if (setting === 'unconfined') return undefined;
  let text: string;
  try {
    text = await readFile(setting, 'utf8');
  } catch (err) {
    throw fail('EINVAL', `read seccomp profile ${setting}: ${messageOf(err)}`, err);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw fail('EINVAL', `seccomp profile ${setting}: not valid JSON: ${messageOf(err)}`, err);
  }
  return parseProfile(json, setting);
}

/** The encoded BPF program of a profile for a container with these capabilities (names "CAP_X"). */
export function seccompProgram(profile: SeccompProfile, caps: string[]): Buffer {
  const arch = nativeArch();
  if (!arch) throw fail('EUNSUPPORTED', `seccomp: no syscall tables for architecture ${process.arch}; run with --security-opt seccomp=unconfined`);
  return encodeProgram(compileProfile(profile, { arch, caps, kernel: release() }));
}
