/**
 * A minimal, deterministic tar encoder for layers tspod writes (commit, export, save).
 *
 * Why not tar-stream's pack: it takes pax values as strings, and a file capability
 * (`SCHILY.xattr.security.capability`) is binary; here pax values are raw bytes. Every header is
 * a function of the entry alone (no clock, no user database, no host state), so the same entries
 * always give the same bytes:
 *   - ustar headers; a pax header ('x') only when needed: a name or link target over 100 bytes, a
 *     size or id that does not fit the octal field, or xattrs. Its name is "PaxHeaders/<base>";
 *   - mtime in whole seconds; no atime/ctime; uname/gname empty (numeric ids only, like umoci);
 *   - mode is the permission bits (incl. setuid/setgid/sticky), as the OCI layer spec wants.
 */
export type TarOutType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarOutEntry {
  /** Path relative to the root, no leading "/" or "./"; directories without the trailing "/". */
  name: string;
  type: TarOutType;
  mode: number;
  uid: number;
  gid: number;
  /** Content size (files only; 0 otherwise). */
  size: number;
  /** Seconds since the epoch (truncated to an integer). */
  mtime: number;
  /** Hard link target (relative path) or symlink target. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes, raw values, written as SCHILY.xattr.<name> pax records in name order. */
  xattrs?: [string, Buffer][];
}

const BLOCK = 512;
const TYPEFLAG: Record<TarOutType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };
const MAX_OCTAL_11 = 0o77777777777; // size, mtime (12-byte fields)
const MAX_OCTAL_7 = 0o7777777; // mode, uid, gid, dev (8-byte fields)

function octal(buf: Buffer, off: number, len: number, value: number): void {
  const s = Math.max(0, Math.floor(value)).toString(8).padStart(len - 1, '0');
  buf.write(s.slice(-(len - 1)), off, len - 1, 'ascii');
  buf[off + len - 1] = 0;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  // the length field counts its own digits
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'ascii'), body]);
}

function header(name: Buffer, typeflag: string, e: { mode: number; uid: number; gid: number; size: number; mtime: number },
  linkname: Buffer, devmajor: number, devminor: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  name.copy(h, 0, 0, Math.min(100, name.length));
  octal(h, 100, 8, e.mode & 0o7777);
  octal(h, 108, 8, e.uid <= MAX_OCTAL_7 ? e.uid : 0);
  octal(h, 116, 8, e.gid <= MAX_OCTAL_7 ? e.gid : 0);
  octal(h, 124, 12, e.size <= MAX_OCTAL_11 ? e.size : 0);
  octal(h, 136, 12, e.mtime >= 0 && e.mtime <= MAX_OCTAL_11 ? e.mtime : 0);
  h.write('        ', 148, 8, 'ascii'); // checksum placeholder
  h.write(typeflag, 156, 1, 'ascii');
  linkname.copy(h, 157, 0, Math.min(100, linkname.length));
  h.write('ustar\x0000', 257, 8, 'binary');
  octal(h, 329, 8, devmajor <= MAX_OCTAL_7 ? devmajor : 0);
  octal(h, 337, 8, devminor <= MAX_OCTAL_7 ? devminor : 0);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i]!;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

/** Zero bytes that pad `size` bytes of content to a block boundary. */
export function tarPadding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

/** Two zero blocks: the end of the archive. */
export function tarEnd(): Buffer {
  return Buffer.alloc(2 * BLOCK);
}

/** The header block(s) of one entry (a pax header first when needed). Content and padding follow. */
export function tarHeader(e: TarOutEntry): Buffer {
  const nameText = e.type === 'dir' ? e.name + '/' : e.name;
  const name = Buffer.from(nameText, 'utf8');
  const link = Buffer.from(e.linkname ?? '', 'utf8');
  const size = e.type === 'file' ? e.size : 0;
  const mtime = Math.floor(e.mtime);
  const records: Buffer[] = [];
  if (name.length > 100) records.push(paxRecord('path', name));
  if (link.length > 100) records.push(paxRecord('linkpath', link));
  if (size > MAX_OCTAL_11) records.push(paxRecord('size', Buffer.from(String(size))));
  if (e.uid > MAX_OCTAL_7) records.push(paxRecord('uid', Buffer.from(String(e.uid))));
  if (e.gid > MAX_OCTAL_7) records.push(paxRecord('gid', Buffer.from(String(e.gid))));
  if (mtime < 0 || mtime > MAX_OCTAL_11) records.push(paxRecord('mtime', Buffer.from(String(mtime))));
  for (const [k, v] of [...(e.xattrs ?? [])].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    records.push(paxRecord('SCHILY.xattr.' + k, v));
  }
  const main = header(name, TYPEFLAG[e.type], { mode: e.mode, uid: e.uid, gid: e.gid, size, mtime }, link,
    e.devmajor ?? 0, e.devminor ?? 0);
  if (records.length === 0) return main;
  const pax = Buffer.concat(records);
  const base = nameText.replace(/\/$/, '').split('/').pop() ?? '';
  const paxName = Buffer.from('PaxHeaders/' + base, 'utf8').subarray(0, 100);
  const ph = header(paxName, 'x', { mode: 0o644, uid: 0, gid: 0, size: pax.length, mtime: 0 }, Buffer.alloc(0), 0, 0);
  return Buffer.concat([ph, pax, tarPadding(pax.length), main]);
}
