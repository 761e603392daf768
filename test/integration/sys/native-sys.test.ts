/**
 * src/sys against the real kernel through native/build/tspod-sys.node (the Node-API module that
 * replaced koffi on the hot path): every call of the Sys interface, its success and its failure
 * (errno name and strerror text in the message, naming the path), and the koffi fallback's parity
 * for the calls a run makes (flock, lgetxattr).
 */
import { closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN, MNT_DETACH, S_IFCHR, SysError, realSys, realSysKind } from '../../../src/sys/index.js';
import { gated, isRoot } from '../../support/caps.js';

const rootReason = isRoot();
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tspod-sys-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('native sys module', () => {
  it('is built and used (koffi is only the fallback of an unbuilt tree)', () => {
    expect(existsSync(join(__dirname, '../../../native/build/tspod-sys.node'))).toBe(true);
    expect(realSysKind()).toBe('native');
  });

  it('flock: exclusive and shared locks exclude each other across open file descriptions; LOCK_UN releases', () => {
    const sys = realSys();
    const f = join(dir, 'lock');
    writeFileSync(f, '');
    const a = openSync(f, 'r+');
    const b = openSync(f, 'r+');
    try {
      expect(sys.flock(a, LOCK_EX | LOCK_NB)).toBe(true);
      expect(sys.flock(b, LOCK_EX | LOCK_NB)).toBe(false);
      expect(sys.flock(b, LOCK_SH | LOCK_NB)).toBe(false);
      expect(sys.flock(a, LOCK_UN)).toBe(true);
      expect(sys.flock(b, LOCK_SH | LOCK_NB)).toBe(true);
      expect(sys.flock(a, LOCK_SH | LOCK_NB)).toBe(true);
      expect(sys.flock(a, LOCK_EX | LOCK_NB)).toBe(false);
    } finally {
      closeSync(a);
      closeSync(b);
    }
  });

  it('flock on a closed fd fails with EBADF, naming the fd', () => {
    const fd = openSync(join(dir, 'lock'), 'r');
    closeSync(fd);
    let err: unknown;
    try {
      realSys().flock(fd, LOCK_EX | LOCK_NB);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SysError);
    expect((err as SysError).errno).toBe('EBADF');
    expect((err as SysError).message).toBe(`flock fd ${fd}: bad file descriptor (EBADF)`);
  });

  it('lgetxattr: null when unset, ENOENT naming the path when the path is missing', () => {
    const sys = realSys();
    const f = join(dir, 'plain');
    writeFileSync(f, 'x');
    expect(sys.lgetxattr(f, 'user.tspod-none')).toBeNull();
    expect(() => sys.lgetxattr(join(dir, 'missing'), 'user.x')).toThrow(`getxattr user.x ${join(dir, 'missing')}: no such file or directory (ENOENT)`);
  });

  it('mount fails with a message naming the target', () => {
    expect(() => realSys().mount('none', join(dir, 'no-such-dir'), 'tmpfs', 0, null)).toThrow(SysError);
    try {
      realSys().mount('none', join(dir, 'no-such-dir'), 'tmpfs', 0, null);
    } catch (e) {
      expect((e as SysError).message).toMatch(new RegExp(`^mount ${join(dir, 'no-such-dir')}: .* \\((ENOENT|EPERM)\\)$`));
    }
  });

  describe.skipIf(rootReason)(gated('as root', rootReason), () => {
    it('lsetxattr/lgetxattr/llistxattr round-trip a trusted.* attribute, binary values intact', () => {
      const sys = realSys();
      const d = join(dir, 'opaque');
      mkdirSync(d);
      sys.lsetxattr(d, 'trusted.overlay.opaque', Buffer.from('y'));
      const bin = new Uint8Array([0, 1, 0xfe, 0xff, 0x80]);
      sys.lsetxattr(d, 'trusted.tspod.bin', bin);
      expect(sys.lgetxattr(d, 'trusted.overlay.opaque')?.toString()).toBe('y');
      expect([...sys.lgetxattr(d, 'trusted.tspod.bin')!]).toEqual([...bin]);
      expect(sys.llistxattr(d)).toEqual(expect.arrayContaining(['trusted.overlay.opaque', 'trusted.tspod.bin']));
      // A value larger than the first buffer (256 bytes) is read whole.
      const big = Buffer.alloc(3000, 7);
      sys.lsetxattr(d, 'trusted.tspod.big', big);
      expect(sys.lgetxattr(d, 'trusted.tspod.big')!.equals(big)).toBe(true);
    });

    it('mknod makes a 0:0 whiteout and an arbitrary char device; EEXIST names the path', () => {
      const sys = realSys();
      const w = join(dir, 'wh');
      sys.mknod(w, S_IFCHR | 0o000, 0, 0);
      const st = lstatSync(w);
      expect(st.isCharacterDevice()).toBe(true);
      expect(st.rdev).toBe(0);
      const null2 = join(dir, 'null2');
      sys.mknod(null2, S_IFCHR | 0o666, 1, 3);
      expect(lstatSync(null2).rdev).toBe(lstatSync('/dev/null').rdev);
      expect(() => sys.mknod(w, S_IFCHR, 0, 0)).toThrow(`mknod ${w}: file exists (EEXIST)`);
    });

    it('mount a tmpfs with data, see it in mountinfo, umount2 it', () => {
      const sys = realSys();
      const m = join(dir, 'mnt');
      mkdirSync(m);
      sys.mount('tspod-sys-test', m, 'tmpfs', 0, 'size=1m,mode=0711');
      try {
        const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === m);
        expect(line).toContain('tmpfs tspod-sys-test');
        expect(line).toContain('size=1024k');
        expect(lstatSync(m).mode & 0o777).toBe(0o711);
      } finally {
        sys.umount2(m, MNT_DETACH);
      }
      expect(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === m)).toBe(false);
      expect(() => sys.umount2(m, 0)).toThrow(`umount ${m}: invalid argument (EINVAL)`);
    });
  });
});
