// Parsing of the docker run options (runtime/options.ts): Docker's syntax and Docker's errors.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  effectiveCapabilities, parseDevice, parseSignal, parseMountFlag, parseSecurityOpts, parseSysctl, parseTmpfsFlag, parseUlimit, parseVolumeFlag, readEnvFiles,
} from '../../../src/runtime/options.js';

describe('capabilities', () => {
  it('follows docker: defaults, ALL in add or drop, adds win, names with or without CAP_, any case', () => {
    expect(effectiveCapabilities()).toHaveLength(14);
    expect(effectiveCapabilities(['sys_admin'])).toContain('SYS_ADMIN');
    expect(effectiveCapabilities([], ['ALL'])).toEqual([]);
    expect(effectiveCapabilities(['CAP_CHOWN'], ['ALL'])).toEqual(['CHOWN']);
    expect(effectiveCapabilities(['ALL'], ['NET_RAW'])).not.toContain('NET_RAW');
    expect(effectiveCapabilities(['ALL'])).toHaveLength(41);
    expect(effectiveCapabilities([], ['NET_RAW', 'MKNOD'])).toHaveLength(12);
    expect(() => effectiveCapabilities(['FLY'])).toThrow('invalid --cap-add "FLY": unknown capability');
  });
});

describe('security-opt', () => {
  it('parses seccomp and no-new-privileges; rejects the unknown', () => {
    expect(parseSecurityOpts(['no-new-privileges'])).toMatchObject({ noNewPrivileges: true });
    expect(parseSecurityOpts(['no-new-privileges:true', 'seccomp=unconfined'])).toMatchObject({ noNewPrivileges: true, seccomp: 'unconfined' });
    expect(parseSecurityOpts(['no-new-privileges=false'])).toMatchObject({ noNewPrivileges: false });
    expect(parseSecurityOpts(['systempaths=unconfined'])).toMatchObject({ systemPathsUnconfined: true });
    expect(() => parseSecurityOpts(['nonsense'])).toThrow('invalid --security-opt "nonsense": unknown option "nonsense"');
    expect(() => parseSecurityOpts(['seccomp='])).toThrow(/want seccomp=unconfined/);
  });
});

describe('mounts', () => {
  it('-v: host paths are binds, names are volumes, a lone path is an anonymous volume', () => {
    expect(parseVolumeFlag('/h:/c')).toMatchObject({ type: 'bind', source: '/h', target: '/c', readonly: false, createSource: true });
    expect(parseVolumeFlag('/h:/c:ro,rslave')).toMatchObject({ type: 'bind', readonly: true, propagation: 'rslave' });
    expect(parseVolumeFlag('data:/c/')).toMatchObject({ type: 'volume', name: 'data', target: '/c' });
    expect(parseVolumeFlag('/c')).toEqual({ type: 'volume', target: '/c', readonly: false, noCopy: false });
    expect(() => parseVolumeFlag('/h:c')).toThrow('container path "c" is not absolute');
    expect(() => parseVolumeFlag('/h:/c:rx')).toThrow('unknown option "rx"');
    expect(() => parseVolumeFlag('/h:/')).toThrow('cannot mount over "/"');
    expect(() => parseVolumeFlag('bad name:/c')).toThrow('invalid volume name');
    // docker 23+: "./x" and "../x" are host paths relative to the current directory
    expect(parseVolumeFlag('./h:/c')).toMatchObject({ type: 'bind', source: `${process.cwd()}/h`, target: '/c' });
    expect(parseVolumeFlag('..:/c:ro')).toMatchObject({ type: 'bind', source: dirname(process.cwd()), readonly: true });
  });
  it('--mount: bind, volume, tmpfs with docker field names', () => {
    expect(parseMountFlag('type=bind,src=/h,dst=/c,readonly')).toMatchObject({ type: 'bind', source: '/h', target: '/c', readonly: true, createSource: false });
    expect(parseMountFlag('type=volume,source=v,target=/c,volume-nocopy')).toMatchObject({ type: 'volume', name: 'v', noCopy: true });
    expect(parseMountFlag('type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777')).toMatchObject({ type: 'tmpfs', data: 'size=1048576,mode=1777' });
    expect(() => parseMountFlag('type=bind,target=/c')).toThrow('a bind mount needs a source');
    expect(() => parseMountFlag('type=nfs,target=/c')).toThrow('type "nfs"');
    expect(() => parseMountFlag('type=bind,source=/h')).toThrow('target is required');
    expect(() => parseMountFlag('type=bind,source=/h,target=/c,color=red')).toThrow('unknown field "color"');
  });
  it('--tmpfs: docker defaults noexec,nosuid,nodev, options override them', () => {
    expect(parseTmpfsFlag('/run')).toMatchObject({ target: '/run', flags: ['noexec', 'nosuid', 'nodev'], data: '' });
    const t = parseTmpfsFlag('/run:exec,size=64m,mode=755');
    expect(t).toMatchObject({ flags: ['nosuid', 'nodev'], data: 'size=67108864,mode=755' });
    expect(() => parseTmpfsFlag('/run:bogus')).toThrow('unknown option "bogus"');
  });
});

describe('ulimit, sysctl, device, env-file', () => {
  it('--stop-signal: names with or without SIG, any case, or numbers', () => {
    expect(parseSignal('SIGTERM', 'x')).toBe('SIGTERM');
    expect(parseSignal('usr1', 'x')).toBe('SIGUSR1');
    expect(parseSignal('9', 'x')).toBe('SIGKILL');
    expect(() => parseSignal('0', '--stop-signal')).toThrow('invalid --stop-signal "0": unknown signal');
    expect(() => parseSignal('SIGFOO', '--stop-signal')).toThrow('unknown signal');
  });
  it('--ulimit', () => {
    expect(parseUlimit('nofile=1024:2048')).toEqual({ type: 'NOFILE', soft: 1024, hard: 2048 });
    expect(parseUlimit('core=-1')).toEqual({ type: 'CORE', soft: 'unlimited', hard: 'unlimited' });
    expect(() => parseUlimit('nofile=10:5')).toThrow('soft limit above hard limit');
    expect(() => parseUlimit('files=1')).toThrow(/want NAME=SOFT\[:HARD\]/);
  });
  it('--sysctl accepts only namespaced keys', () => {
    expect(parseSysctl('net.ipv4.ip_forward=1', false)).toEqual(['net.ipv4.ip_forward', '1']);
    expect(parseSysctl('kernel/shmmax=100', false)).toEqual(['kernel.shmmax', '100']);
    expect(parseSysctl('fs.mqueue.msg_max=20', false)).toEqual(['fs.mqueue.msg_max', '20']);
    expect(() => parseSysctl('kernel.panic=1', false)).toThrow('sysctl "kernel.panic" is not namespaced');
    expect(() => parseSysctl('net.ipv4.ip_forward=1', true)).toThrow('not allowed with the host network');
    expect(() => parseSysctl('net.ipv4../x=1', false)).toThrow('bad name');
  });
  it('--device takes the host node\'s numbers', () => {
    expect(parseDevice('/dev/null:/dev/n2:rw')).toMatchObject({ path: '/dev/n2', type: 'c', major: 1, minor: 3 });
    expect(() => parseDevice('/etc/passwd')).toThrow('is not a device');
    expect(() => parseDevice('/dev/none-such')).toThrow(/invalid --device "\/dev\/none-such": /);
  });
  it('--env-file: comments, blank lines, pass-through names; a bad line or a missing file is named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'envfile-'));
    try {
      writeFileSync(join(dir, 'a'), '# c\nA=1\n\n  B=x y\nC\n');
      expect(await readEnvFiles([join(dir, 'a')])).toEqual(['A=1', 'B=x y', 'C']);
      writeFileSync(join(dir, 'b'), 'BAD KEY=1\n');
      await expect(readEnvFiles([join(dir, 'b')])).rejects.toThrow(`--env-file ${join(dir, 'b')} line 1: variable "BAD KEY" contains whitespace`);
      await expect(readEnvFiles([join(dir, 'nope')])).rejects.toThrow(`read --env-file ${join(dir, 'nope')}: `);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
