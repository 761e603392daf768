import { describe, expect, it } from 'vitest';
import { encodeField, serializePlan, type LaunchPlan } from '../../../src/runtime/plan.js';
import { TspodError } from '../../../src/util/errors.js';

function plan(over: Partial<LaunchPlan> = {}): LaunchPlan {
  return {
    rootfs: '/var/lib/tspod/c1/rootfs',
    namespaces: ['pid', 'mount'],
    premounts: [],
    mounts: [],
    devices: [],
    symlinks: [],
    maskedPaths: [],
    readonlyPaths: [],
    cwd: '/',
    env: ['PATH=/bin'],
    args: ['sh'],
    user: { uid: 0, gid: 0, additionalGids: [] },
    rlimits: [],
    noNewPrivileges: false,
    sync: false,
    ...over,
  };
}

describe('encodeField', () => {
  it('keeps printable ASCII as is', () => {
    expect(encodeField('abc/DEF_0-9=x,y:z')).toBe('abc/DEF_0-9=x,y:z');
  });
  it('escapes spaces, percent, newlines, tabs and non-ASCII as UTF-8 bytes', () => {
    expect(encodeField('a b')).toBe('a%20b');
    expect(encodeField('100%')).toBe('100%25');
    expect(encodeField('l1\nl2\r\t')).toBe('l1%0Al2%0D%09');
    expect(encodeField('é')).toBe('%C3%A9');
    expect(encodeField('\x7f~')).toBe('%7F~');
  });
  it('writes empty and absent as "-", and a literal "-" escaped', () => {
    expect(encodeField('')).toBe('-');
    expect(encodeField(undefined)).toBe('-');
    expect(encodeField('-')).toBe('%2D');
    expect(encodeField('--')).toBe('--');
  });
  it('rejects NUL bytes', () => {
    expect(() => encodeField('a\0b')).toThrow(TspodError);
    expect(() => serializePlan(plan({ args: ['sh', 'a\0'] }))).toThrow(/NUL/);
  });
  it('round-trips through a decoder written from the spec', () => {
    const decode = (f: string) => (f === '-' ? '' : Buffer.from(f.replace(/%([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8'));
    for (const s of ['', '-', 'a b%c', 'x\ny', 'ünï cødé', ' ', '%2D', '%%']) {
      const e = encodeField(s);
      expect(e).toMatch(/^[\x21-\x7e]+$/);
      expect(decode(e)).toBe(s);
    }
  });
});

describe('serializePlan', () => {
  it('writes every record in order, one per line, ending with "end"', () => {
    const text = serializePlan(plan({
      namespaces: ['pid', 'mount', 'uts', 'net'],
      premounts: [{ source: 'overlay', destination: '/r/root fs', type: 'overlay', flags: [], data: 'lowerdir=a:b', chdir: '/store' }],
      mounts: [
        { source: 'proc', destination: '/proc', type: 'proc', flags: ['nosuid', 'noexec', 'nodev'] },
        { source: '/host dir', destination: '/data', flags: ['rbind', 'ro'] },
      ],
      devices: [{ path: '/dev/null', type: 'c', major: 1, minor: 3, mode: 0o666, uid: 0, gid: 0 }],
      symlinks: [{ target: 'pts/ptmx', path: '/dev/ptmx' }],
      maskedPaths: ['/proc/kcore'],
      readonlyPaths: ['/proc/sys'],
      hostname: 'box',
      cwd: '/work dir',
      mkdirCwd: true,
      env: ['PATH=/bin', 'GREETING=hello world'],
      args: ['sh', '-c', 'echo "$GREETING"', ''],
      user: { uid: 1000, gid: 1000, additionalGids: [10, 20] },
      rlimits: [{ type: 'nofile', soft: 1024, hard: 4096 }, { type: 'RLIMIT_CORE', soft: 'unlimited', hard: 'unlimited' }],
      capabilities: [10, 0, 5, 5],
      noNewPrivileges: true,
      loopbackUp: true,
      seccompProgramPath: '/tmp/prog.bpf',
      sync: true,
    }));
    expect(text.split('\n')).toEqual([
      'rootfs /var/lib/tspod/c1/rootfs',
      'namespaces pid mount uts net',
      'premount overlay /r/root%20fs overlay - lowerdir=a:b /store',
      'mount proc /proc proc nosuid,noexec,nodev -',
      'mount /host%20dir /data - rbind,ro -',
      'mknod /dev/null c 1 3 0666 0 0',
      'symlink pts/ptmx /dev/ptmx',
      'mask /proc/kcore',
      'readonly /proc/sys',
      'hostname box',
      'cwd /work%20dir',
      'mkdir-cwd',
      'env PATH=/bin',
      'env GREETING=hello%20world',
      'args sh -c echo%20"$GREETING" -',
      'user 1000 1000 10 20',
      'rlimit NOFILE 1024 4096',
      'rlimit CORE unlimited unlimited',
      'caps 0 5 10',
      'no-new-privs',
      'seccomp /tmp/prog.bpf',
      'loopback-up',
      'sync',
      'end',
      '',
    ]);
  });

  it('omits optional records and writes an empty caps record to drop everything', () => {
    expect(serializePlan(plan())).toBe('rootfs /var/lib/tspod/c1/rootfs\nnamespaces pid mount\ncwd /\nenv PATH=/bin\nargs sh\nuser 0 0\nend\n');
    expect(serializePlan(plan({ capabilities: [] }))).toContain('\ncaps\n');
  });

  it.each<[string, Partial<LaunchPlan>, RegExp]>([
    ['a relative rootfs', { rootfs: 'rootfs' }, /rootfs "rootfs" is not an absolute path/],
    ['no mount namespace', { namespaces: ['pid'] }, /mount namespace is required/],
    ['a hostname without uts', { hostname: 'x' }, /hostname needs the uts namespace/],
    ['an empty command', { args: [] }, /no command/],
    ['a bad env entry', { env: ['NOEQUALS'] }, /not KEY=VALUE/],
    ['an unknown rlimit', { rlimits: [{ type: 'BOGUS', soft: 1, hard: 1 }] }, /unknown rlimit/],
    ['soft above hard', { rlimits: [{ type: 'NOFILE', soft: 10, hard: 5 }] }, /soft limit above hard/],
    ['a capability out of range', { capabilities: [64] }, /bad capability 64/],
    ['a relative mount destination', { mounts: [{ destination: 'proc', flags: [] }] }, /not an absolute path/],
    ['an unknown mount flag', { mounts: [{ destination: '/x', flags: ['bogus' as 'ro'] }] }, /unknown mount flag "bogus"/],
    ['a negative uid', { user: { uid: -1, gid: 0, additionalGids: [] } }, /bad uid -1/],
    ['loopback without net', { loopbackUp: true }, /loopbackUp needs the net namespace/],
  ])('rejects %s', (_name, over, re) => {
    let caught: unknown;
    try { serializePlan(plan(over)); } catch (err) { caught = err; }
    expect(caught).toBeInstanceOf(TspodError);
    expect((caught as TspodError).code).toBe('EINVAL');
    expect((caught as TspodError).message).toMatch(re);
  });
});
