/**
 * `--user` / the image's User resolved the way docker does it: "name", "uid", "name:group",
 * "uid:gid", against the image's /etc/passwd and /etc/group; supplementary groups are those
 * that list the user by name, after the primary group; HOME comes from passwd, else "/".
 */
import { fail } from '../util/errors.js';

export interface ImageFiles {
  /** The bytes of a file as the container will see it, or undefined when it does not exist. */
  read(path: string): Promise<Buffer | undefined>;
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

const ID_RE = /^[0-9]+$/;
const MAX_ID = 2 ** 32 - 2;

function parseId(s: string, what: string, spec: string): number {
  const n = Number(s);
  if (!ID_RE.test(s) || n > MAX_ID) throw fail('EINVAL', `invalid user "${spec}": ${what} "${s}" out of range`);
  return n;
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || line.startsWith('#') || !ID_RE.test(f[2]!) || !ID_RE.test(f[3]!)) continue;
    out.push({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 4 || line.startsWith('#') || !ID_RE.test(f[2]!)) continue;
    out.push({ name: f[0]!, gid: Number(f[2]), members: f[3]!.split(',').filter(Boolean) });
  }
  return out;
}

export async function resolveUser(spec: string, files: ImageFiles): Promise<ResolvedUser> {
  const [userPart = '', groupPart] = spec.split(':', 2) as [string, string | undefined];
  const needPasswd = userPart !== '' || groupPart === undefined;
  const passwd = needPasswd ? parsePasswd((await files.read('/etc/passwd'))?.toString('utf8') ?? '') : [];
  const groupsText = (await files.read('/etc/group'))?.toString('utf8');
  const groups = groupsText ? parseGroup(groupsText) : [];

  let uid = 0;
  let gid = 0;
  let home = '/';
  let name: string | undefined;
  if (userPart === '' ) {
    const root = passwd.find((p) => p.uid === 0);
    if (root) ({ gid, home, name } = root);
    if (!root) home = '/root';
  } else if (ID_RE.test(userPart)) {
    uid = parseId(userPart, 'uid', spec);
    const entry = passwd.find((p) => p.uid === uid);
    if (entry) ({ gid, home, name } = entry);
  } else {
    const entry = passwd.find((p) => p.name === userPart);
    if (!entry) throw fail('EINVAL', `unable to find user ${userPart}: no matching entries in passwd file`);
    ({ uid, gid, home, name } = entry);
  }
  if (groupPart !== undefined && groupPart !== '') {
    if (ID_RE.test(groupPart)) gid = parseId(groupPart, 'gid', spec);
    else {
      const g = groups.find((e) => e.name === groupPart);
      if (!g) throw fail('EINVAL', `unable to find group ${groupPart}: no matching entries in group file`);
      gid = g.gid;
    }
  }
  const additionalGids = name === undefined ? [] : groups.filter((g) => g.members.includes(name) && g.gid !== gid).map((g) => g.gid);
  // The primary group leads the supplementary list, as containerd/docker set it (`id` shows groups=GID,…).
  return { uid, gid, additionalGids: [...new Set([gid, ...additionalGids])], home: home || '/' };
}
