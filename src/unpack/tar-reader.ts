/**
 * A small push-based streaming tar reader: ustar, POSIX pax (typeflags x and g), GNU long
 * names/links (L and K) and GNU sparse files (old 'S' entries with extension blocks, pax
 * GNU.sparse 0.1 and 1.0; content is handed over with its file position, holes skipped). Written for layer unpacking, where two things matter that general tar
 * libraries get wrong or make slow:
 *
 * - pax values are kept as raw bytes. `SCHILY.xattr.security.capability` is binary; decoding it as
 *   UTF-8 (as tar-stream 3.3.0 does) corrupts every byte >= 0x80 and silently drops a file's
 *   capabilities. Only the well-known text keys (path, linkpath, size, uid, gid, mtime, …) are decoded.
 * - no promise per entry and no copy of file content: the handler gets `entry()`, then zero or more
 *   `data()` slices of the caller's chunks (valid only during the call), then `entryEnd()`,
 *   synchronously, inside `write()`. An exception thrown by the handler propagates out of `write()`.
 *
 * The reader does not touch the file system; src/unpack/unpack.ts decides what an entry means.
 */
import { fail } from '../util/errors.js';

export type TarEntryType =
  | 'file'
  | 'link'      // hard link to `linkname`
  | 'symlink'
  | 'char'
  | 'block'
  | 'dir'
  | 'fifo';

export interface TarEntry {
  /** The entry's path as stored (pax `path`, GNU long name or ustar prefix/name); not cleaned. */
  name: string;
  type: TarEntryType;
  /** Permission bits including setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Content bytes that follow the header (0 for everything but regular files). */
  size: number;
  /** Modification time in seconds since the epoch (may carry a fraction from pax). */
  mtime: number;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes from `SCHILY.xattr.<name>` pax records, values as raw bytes. */
  xattrs: Map<string, Buffer>;
  /** Every pax record that applied to this entry (global ones first, then per-entry), raw bytes. */
  pax: Map<string, Buffer>;
  /**
   * Set for a sparse file (GNU 'S' entries, pax GNU.sparse 0.1 and 1.0): the data segments as
   * [offset, length]; everything else is a hole. `size` is then the file's real size. For
   * format 1.0 the map is read from the archive after `entry()` and filled in before the first
   * `data()` call.
   */
  sparseMap?: [number, number][];
}

export interface TarHandler {
  entry(e: TarEntry): void;
  /**
   * A slice of the current entry's content, to be written at `position` in the file (sequential
   * for ordinary files; sparse files skip their holes). The buffer may be reused after the call.
   */
  data(chunk: Buffer, position: number): void;
  entryEnd(): void;
}

const BLOCK = 512;
const MAX_META = 16 * 1024 * 1024; // cap on pax/GNU long-name records held in memory

type State = 'header' | 'data' | 'padding' | 'meta' | 'sparseext' | 'sparsemap' | 'done';

/** Longest sparse map accepted (segments), so a hostile archive cannot make us hold gigabytes. */
const MAX_SPARSE_SEGMENTS = 1 << 20;

export class TarReader {
  private state: State = 'header';
  /** Bytes of a partial header or meta record carried across chunks. */
  private held: Buffer[] = [];
  private heldLen = 0;
  /** Content or padding bytes left in the current state. */
  private remaining = 0;
  private metaKind = '';
  private metaSize = 0;
  private globalPax = new Map<string, Buffer>();
  private nextPax: Map<string, Buffer> | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;
  private current: TarEntry | undefined;
  private offset = 0; // archive offset of the next byte, for error messages
  private entries = 0;
  /** Logical file position of the next content byte (non-sparse files). */
  private filePos = 0;
  /** The current sparse file's map and where we are in it. */
  private sparse: { map: [number, number][]; idx: number; segOff: number } | undefined;
  /** Stored content bytes of the current entry (header size; for sparse 1.0 it includes the map). */
  private stored = 0;
  /** Blocks of a sparse 1.0 map read so far. */
  private mapBlocks: Buffer[] = [];

  constructor(private readonly handler: TarHandler) {}

  /** True once the end-of-archive marker (a zero block) was read. */
  get done(): boolean {
    return this.state === 'done';
  }

  /**
   * Feeds bytes. Without `pause`, consumes the whole chunk. With it, `pause()` is asked after each
   * header: when it returns true, write() stops there and returns the bytes consumed so far; the
   * caller feeds the rest later (this is how the unpacker yields to the event loop between entries
   * without cutting file content into small writes).
   */
  write(chunk: Buffer, pause?: () => boolean): number {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      switch (this.state) {
        case 'done':
          this.offset += len - pos;
          return len; // trailing zero blocks or padding after the end marker
        case 'data': {
          const n = Math.min(this.remaining, len - pos);
          if (n > 0) this.deliver(chunk.subarray(pos, pos + n));
          pos += n;
          this.offset += n;
          this.remaining -= n;
          if (this.remaining === 0) this.finishEntry();
          break;
        }
        case 'padding': {
          const n = Math.min(this.remaining, len - pos);
          pos += n;
          this.offset += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = 'header';
          break;
        }
        case 'header': {
          if (this.heldLen === 0 && len - pos >= BLOCK) {
            this.header(chunk.subarray(pos, pos + BLOCK));
            pos += BLOCK;
          } else {
            const n = Math.min(BLOCK - this.heldLen, len - pos);
            this.hold(chunk.subarray(pos, pos + n));
            pos += n;
            if (this.heldLen === BLOCK) this.header(this.takeHeld());
            else break;
          }
          if (pause !== undefined && pos < len && pause()) return pos;
          break;
        }
        case 'meta': {
          const n = Math.min(this.remaining, len - pos);
          this.hold(chunk.subarray(pos, pos + n));
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.meta(this.takeHeld());
          break;
        }
        case 'sparseext': // old GNU sparse: 512-byte extension blocks after the header
        case 'sparsemap': { // pax sparse 1.0: the map, in 512-byte blocks at the start of the data
          const n = Math.min(BLOCK - this.heldLen, len - pos);
          this.hold(chunk.subarray(pos, pos + n));
          pos += n;
          this.offset += n;
          if (this.heldLen === BLOCK) {
            if (this.state === 'sparseext') this.sparseExtension(this.takeHeld());
            else this.sparseMapBlock(this.takeHeld());
          }
          break;
        }
      }
    }
    return len;
  }

  /** Call at end of input; throws when the archive stops inside an entry. */
  end(): void {
    if (this.state === 'done') return;
    if (this.state === 'header' && this.heldLen === 0 && this.nextPax === undefined &&
        this.longName === undefined && this.longLink === undefined) {
      // No end-of-archive marker, but the input stopped on an entry boundary: accept, like Go's
      // archive/tar and GNU tar (which only warns).
      this.state = 'done';
      return;
    }
    const what = this.current ? `entry "${this.current.name}"` : 'a header';
    throw fail('EINVAL', `read tar: archive truncated inside ${what} at offset ${this.offset}`);
  }

  private hold(b: Buffer): void {
    // Copy: the caller's chunk may be reused once write() returns.
    this.held.push(Buffer.from(b));
    this.heldLen += b.length;
  }

  private takeHeld(): Buffer {
    const b = this.held.length === 1 ? this.held[0] : Buffer.concat(this.held, this.heldLen);
    this.held = [];
    this.heldLen = 0;
    return b;
  }

  private header(h: Buffer): void {
    const at = this.offset;
    this.offset += BLOCK;
    if (isZeroBlock(h)) {
      this.state = 'done';
      return;
    }
    if (!checksumOk(h)) {
      throw fail('EINVAL', `read tar: invalid header checksum at offset ${at}` +
        (this.entries === 0 ? ' (not a tar archive?)' : ''));
    }
    const flag = h[156] === 0 ? '0' : String.fromCharCode(h[156]);
    const size = readNumber(h, 124, 12, 'size', at);
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > MAX_META) throw fail('EINVAL', `read tar: ${flag} record of ${size} bytes at offset ${at} is too large`);
      this.metaKind = flag;
      this.metaSize = size;
      this.remaining = padded(size);
      if (this.remaining === 0) this.meta(Buffer.alloc(0));
      else this.state = 'meta';
      return;
    }
    const magic = h.toString('latin1', 257, 263);
    const ustar = magic === 'ustar\0';
    const gnu = magic === 'ustar ';
    let name = cstr(h, 0, 100);
    if (ustar) {
      const prefix = cstr(h, 345, 155);
      if (prefix) name = prefix + '/' + name;
    }
    let type: TarEntryType;
    switch (flag) {
      case '0': case '7': type = 'file'; break;
      case '1': type = 'link'; break;
      case '2': type = 'symlink'; break;
      case '3': type = 'char'; break;
      case '4': type = 'block'; break;
      case '5': type = 'dir'; break;
      case '6': type = 'fifo'; break;
      case 'S': type = 'file'; break; // old GNU sparse file, map below
      default:
        throw fail('EUNSUPPORTED', `read tar: entry "${name}" has unknown type '${flag}' at offset ${at}`);
    }
    // Pre-POSIX archives mark directories only with a trailing slash.
    if (type === 'file' && flag === '0' && name.endsWith('/')) type = 'dir';
    // The entry's own records are a fresh map (meta): used as they are unless global ones apply too.
    let pax: Map<string, Buffer>;
    if (this.globalPax.size === 0) {
      pax = this.nextPax ?? new Map();
    } else {
      pax = new Map(this.globalPax);
      if (this.nextPax) for (const [k, v] of this.nextPax) pax.set(k, v);
    }
    const e: TarEntry = {
      name,
      type,
      mode: readNumber(h, 100, 8, 'mode', at) & 0o7777,
      uid: readNumber(h, 108, 8, 'uid', at),
      gid: readNumber(h, 116, 8, 'gid', at),
      size,
      mtime: readNumber(h, 136, 12, 'mtime', at),
      linkname: cstr(h, 157, 100),
      uname: ustar || gnu ? cstr(h, 265, 32) : '',
      gname: ustar || gnu ? cstr(h, 297, 32) : '',
      devmajor: ustar || gnu ? readNumber(h, 329, 8, 'devmajor', at) : 0,
      devminor: ustar || gnu ? readNumber(h, 337, 8, 'devminor', at) : 0,
      xattrs: new Map(),
      pax,
    };
    if (this.longName !== undefined) e.name = this.longName;
    if (this.longLink !== undefined) e.linkname = this.longLink;
    for (const [k, v] of pax) applyPax(e, k, v, at);
    this.nextPax = undefined;
    this.longName = undefined;
    this.longLink = undefined;
    // Only regular files carry content. Links, devices, dirs and FIFOs are header-only whatever
    // their size field says (as in Go's archive/tar and GNU tar): nothing follows them.
    if (e.type !== 'file') e.size = 0;
    this.stored = e.size;
    this.filePos = 0;
    this.sparse = undefined;
    this.mapBlocks = [];
    let next: State = 'data';
    if (flag === 'S') {
      // Old GNU sparse: 4 map entries in the header, more in extension blocks; realsize at 483.
      e.sparseMap = [];
      for (let i = 0; i < 4; i++) this.sparseEntry(e, h, 386 + i * 24, at);
      e.size = readNumber(h, 483, 12, 'sparse realsize', at);
      if (h[482]) next = 'sparseext';
    } else if (e.type === 'file') {
      next = this.paxSparse(e, pax, at);
    }
    if (e.sparseMap) this.sparse = { map: e.sparseMap, idx: 0, segOff: 0 };
    this.current = e;
    this.entries++;
    this.handler.entry(e);
    this.remaining = this.stored;
    if (next !== 'data') this.state = next;
    else if (this.stored === 0) this.finishEntry();
    else this.state = 'data';
  }

  /** GNU sparse in pax form: 0.1 (map in a record) or 1.0 (map at the start of the data). */
  private paxSparse(e: TarEntry, pax: Map<string, Buffer>, at: number): State {
    const get = (k: string): string | undefined => pax.get(k)?.toString('utf8');
    const num = (k: string): number => {
      const n = Number(get(k));
      if (!Number.isSafeInteger(n) || n < 0) throw fail('EINVAL', `read tar: pax ${k}="${get(k)}" at offset ${at} is not a number`);
      return n;
    };
    const major = get('GNU.sparse.major');
    const hasMap = pax.has('GNU.sparse.map');
    if (major === undefined && !hasMap) {
      if (pax.has('GNU.sparse.offset') || pax.has('GNU.sparse.numbytes')) {
        throw fail('EUNSUPPORTED', `read tar: entry "${e.name}" uses GNU sparse format 0.0, which is not supported (use --sparse-version=1.0)`);
      }
      return 'data';
    }
    const realName = get('GNU.sparse.name');
    if (realName) e.name = realName;
    if (major === '1') {
      e.size = num('GNU.sparse.realsize');
      e.sparseMap = [];
      return this.stored === 0 ? 'data' : 'sparsemap';
    }
    if (major !== undefined && major !== '0') throw fail('EUNSUPPORTED', `read tar: entry "${e.name}" uses GNU sparse format ${major}.x`);
    // 0.1: "GNU.sparse.map" = "off,len,off,len,…", real size in GNU.sparse.size.
    e.size = num(pax.has('GNU.sparse.realsize') ? 'GNU.sparse.realsize' : 'GNU.sparse.size');
    const parts = (get('GNU.sparse.map') ?? '').split(',').filter((x) => x !== '').map(Number);
    if (parts.length % 2 !== 0 || parts.some((n) => !Number.isSafeInteger(n) || n < 0) || parts.length / 2 > MAX_SPARSE_SEGMENTS) {
      throw fail('EINVAL', `read tar: entry "${e.name}" has a malformed GNU.sparse.map at offset ${at}`);
    }
    e.sparseMap = [];
    for (let i = 0; i < parts.length; i += 2) this.addSegment(e, parts[i]!, parts[i + 1]!, at);
    return 'data';
  }

  private addSegment(e: TarEntry, off: number, len: number, at: number): void {
    const map = e.sparseMap!;
    const prev = map[map.length - 1];
    if ((prev && off < prev[0] + prev[1]) || map.length >= MAX_SPARSE_SEGMENTS) {
      throw fail('EINVAL', `read tar: entry "${e.name}" has an invalid sparse map at offset ${at}`);
    }
    map.push([off, len]);
  }

  private sparseEntry(e: TarEntry, b: Buffer, off: number, at: number): void {
    if (b[off] === 0) return; // unused slot
    this.addSegment(e, readNumber(b, off, 12, 'sparse offset', at), readNumber(b, off + 12, 12, 'sparse numbytes', at), at);
  }

  private sparseExtension(b: Buffer): void {
    const e = this.current!;
    for (let i = 0; i < 21; i++) this.sparseEntry(e, b, i * 24, this.offset - BLOCK);
    if (b[504]) return; // another extension block follows
    if (this.stored === 0) this.finishEntry();
    else this.state = 'data';
  }

  /** Sparse 1.0: after each 512-byte block of the map, try to parse it; the data follows the block it ends in. */
  private sparseMapBlock(block: Buffer): void {
    const e = this.current!;
    this.remaining -= BLOCK;
    this.mapBlocks.push(block);
    if (this.mapBlocks.length * BLOCK > 48 * MAX_SPARSE_SEGMENTS) throw fail('EINVAL', `read tar: entry "${e.name}" has a sparse map that is too large`);
    const text = Buffer.concat(this.mapBlocks).toString('latin1');
    const lines = text.split('\n');
    lines.pop(); // an incomplete last line (or '' after the final newline)
    if (lines.length === 0) return;
    const count = Number(lines[0]);
    if (!Number.isSafeInteger(count) || count < 0 || count > MAX_SPARSE_SEGMENTS) {
      throw fail('EINVAL', `read tar: entry "${e.name}" has a malformed sparse map`);
    }
    if (lines.length < 1 + 2 * count) {
      if (this.remaining <= 0) throw fail('EINVAL', `read tar: entry "${e.name}": sparse map runs past the entry`);
      return;
    }
    this.mapBlocks = [];
    for (let i = 0; i < count; i++) {
      const off = Number(lines[1 + 2 * i]);
      const len = Number(lines[2 + 2 * i]);
      if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off < 0 || len < 0) {
        throw fail('EINVAL', `read tar: entry "${e.name}" has a malformed sparse map`);
      }
      this.addSegment(e, off, len, this.offset);
    }
    if (this.remaining < 0) throw fail('EINVAL', `read tar: entry "${e.name}": sparse map runs past the entry`);
    if (this.remaining === 0) this.finishEntry();
    else this.state = 'data';
  }

  /** Hands content to the handler at its file position (through the sparse map, if any). */
  private deliver(buf: Buffer): void {
    const sp = this.sparse;
    if (!sp) {
      this.handler.data(buf, this.filePos);
      this.filePos += buf.length;
      return;
    }
    while (buf.length > 0) {
      while (sp.idx < sp.map.length && sp.segOff === sp.map[sp.idx]![1]) { sp.idx++; sp.segOff = 0; }
      const seg = sp.map[sp.idx];
      if (!seg) throw fail('EINVAL', `read tar: entry "${this.current!.name}" has more data than its sparse map`);
      const take = Math.min(seg[1] - sp.segOff, buf.length);
      if (seg[0] + sp.segOff + take > this.current!.size) {
        throw fail('EINVAL', `read tar: entry "${this.current!.name}": sparse data beyond its size ${this.current!.size}`);
      }
      this.handler.data(buf.subarray(0, take), seg[0] + sp.segOff);
      sp.segOff += take;
      buf = buf.subarray(take);
    }
  }

  private finishEntry(): void {
    const size = this.stored;
    this.handler.entryEnd();
    this.current = undefined;
    const pad = padded(size) - size;
    if (pad > 0) {
      this.remaining = pad;
      this.state = 'padding';
    } else {
      this.state = 'header';
    }
  }

  private meta(raw: Buffer): void {
    this.offset += raw.length;
    const body = raw.subarray(0, this.metaSize);
    this.state = 'header';
    switch (this.metaKind) {
      case 'L':
        this.longName = cstr(body, 0, body.length);
        break;
      case 'K':
        this.longLink = cstr(body, 0, body.length);
        break;
      case 'x': // `raw` is ours (hold() copies): the values may point into it
        this.nextPax = parsePax(body, this.nextPax ?? new Map(), false);
        break;
      case 'g':
        parsePax(body, this.globalPax, false);
        break;
    }
  }
}

/**
 * Parses pax records "<len> <key>=<value>\n" keeping values as raw bytes: copies, unless `copy` is false
 * (then they are views of `body`, which the caller must never change).
 */
export function parsePax(body: Buffer, into: Map<string, Buffer>, copy = true): Map<string, Buffer> {
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) break; // some writers pad with NULs
    const sp = body.indexOf(0x20, pos);
    if (sp < 0) throw fail('EINVAL', 'read tar: malformed pax record (no length)');
    const len = Number(body.toString('latin1', pos, sp));
    if (!Number.isInteger(len) || len <= sp - pos + 1 || pos + len > body.length) {
      throw fail('EINVAL', `read tar: malformed pax record length "${body.toString('latin1', pos, sp)}"`);
    }
    const rec = body.subarray(sp + 1, pos + len);
    const eq = rec.indexOf(0x3d); // '='
    if (eq < 0 || rec[rec.length - 1] !== 0x0a) throw fail('EINVAL', 'read tar: malformed pax record (no "=" or newline)');
    const key = rec.toString('utf8', 0, eq);
    const value = rec.subarray(eq + 1, rec.length - 1);
    // An empty value deletes the key (POSIX); keep it as empty so a per-entry record can override a global one.
    into.set(key, copy ? Buffer.from(value) : value);
    pos += len;
  }
  return into;
}

function applyPax(e: TarEntry, key: string, v: Buffer, at: number): void {
  const num = (): number => {
    const s = v.toString('latin1');
    const n = Number(s);
    if (s === '' || !Number.isFinite(n) || n < 0) throw fail('EINVAL', `read tar: pax ${key}="${s}" at offset ${at} is not a number`);
    return n;
  };
  switch (key) {
    case 'path': if (v.length) e.name = v.toString('utf8'); break;
    case 'linkpath': if (v.length) e.linkname = v.toString('utf8'); break;
    case 'size': if (v.length) e.size = num(); break;
    case 'uid': if (v.length) e.uid = num(); break;
    case 'gid': if (v.length) e.gid = num(); break;
    case 'mtime': if (v.length) e.mtime = num(); break;
    case 'uname': e.uname = v.toString('utf8'); break;
    case 'gname': e.gname = v.toString('utf8'); break;
    default:
      if (key.startsWith('SCHILY.xattr.')) {
        e.xattrs.set(key.slice('SCHILY.xattr.'.length), v);
      }
  }
}

function padded(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

function isZeroBlock(h: Buffer): boolean {
  for (let i = 0; i < BLOCK; i += 1) if (h[i] !== 0) return false;
  return true;
}

function checksumOk(h: Buffer): boolean {
  let unsigned = 0, signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  const stored = parseOctal(h, 148, 8);
  return stored === unsigned || stored === signed;
}

/** A NUL-terminated string field. Names are UTF-8 in practice (pax requires it, GNU tar writes the locale's bytes). */
function cstr(b: Buffer, off: number, len: number): string {
  let end = b.indexOf(0, off);
  if (end < 0 || end > off + len) end = off + len;
  return b.toString('utf8', off, end);
}

function parseOctal(b: Buffer, off: number, len: number): number {
  let i = off;
  const end = off + len;
  while (i < end && (b[i] === 0x20 || b[i] === 0)) i++;
  let n = 0;
  for (; i < end; i++) {
    const c = b[i];
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) return -1;
    n = n * 8 + (c - 0x30);
  }
  return n;
}

/** Numeric header field: octal, or GNU base-256 (high bit of the first byte set). */
function readNumber(b: Buffer, off: number, len: number, field: string, at: number): number {
  if (b[off] & 0x80) {
    if (b[off] === 0xff) throw fail('EINVAL', `read tar: negative ${field} at offset ${at}`);
    let n = b[off] & 0x7f;
    for (let i = off + 1; i < off + len; i++) n = n * 256 + b[i];
    if (!Number.isSafeInteger(n)) throw fail('EINVAL', `read tar: ${field} too large at offset ${at}`);
    return n;
  }
  const n = parseOctal(b, off, len);
  if (n < 0) throw fail('EINVAL', `read tar: invalid ${field} field at offset ${at}`);
  return n;
}
