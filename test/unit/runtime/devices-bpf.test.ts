import { describe, expect, it } from 'vitest';
import {
  ACC_MKNOD, ACC_READ, ACC_WRITE, DEV_BLOCK, DEV_CHAR, compileDeviceRules, encodeProgram, runDeviceProgram,
} from '../../../src/runtime/cgroups/devices-bpf.js';
import { deviceRules } from '../../../src/container/run-options.js';

const RW = ACC_READ | ACC_WRITE;

describe('cgroup v2 device program', () => {
  const docker = compileDeviceRules(deviceRules({})!);
  const allows = (type: number, major: number, minor: number, access: number) => runDeviceProgram(docker, type, major, minor, access) === 1;

  it("docker's default policy: the standard character devices and the pts, mknod of anything, nothing else", () => {
    for (const [maj, min] of [[1, 3], [1, 5], [1, 7], [1, 8], [1, 9], [5, 0], [5, 1], [5, 2], [136, 0], [136, 77], [10, 200]] as const) {
      expect(allows(DEV_CHAR, maj, min, RW), `c ${maj}:${min} rw`).toBe(true);
      expect(allows(DEV_CHAR, maj, min, ACC_READ), `c ${maj}:${min} r`).toBe(true);
    }
    // mknod of any node is allowed; opening the host's disks, memory, ttys is not
    expect(allows(DEV_BLOCK, 8, 0, ACC_MKNOD)).toBe(true);
    expect(allows(DEV_CHAR, 4, 1, ACC_MKNOD)).toBe(true);
    expect(allows(DEV_BLOCK, 8, 0, ACC_READ)).toBe(false);
    expect(allows(DEV_BLOCK, 8, 0, ACC_WRITE)).toBe(false);
    expect(allows(DEV_CHAR, 1, 1, ACC_READ)).toBe(false); // /dev/mem
    expect(allows(DEV_CHAR, 4, 1, RW)).toBe(false); // /dev/tty1
    expect(allows(DEV_CHAR, 10, 229, RW)).toBe(false); // /dev/fuse
    // a rule's access is a ceiling: mknod + read of 1:3 is within rwm, of 8:0 it is not (read is not allowed)
    expect(allows(DEV_CHAR, 1, 3, ACC_MKNOD | RW)).toBe(true);
    expect(allows(DEV_BLOCK, 8, 0, ACC_MKNOD | ACC_READ)).toBe(false);
    // the type must match: a block device 1:3 is not /dev/null
    expect(allows(DEV_BLOCK, 1, 3, ACC_READ)).toBe(false);
  });

  it('--device adds its rule with its permissions', () => {
    const rules = deviceRules({ devices: ['/dev/kmsg:/dev/kmsg:r'] })!;
    expect(rules.at(-1)).toBe('c 1:11 r'); // resolved from the host's node
    const prog = compileDeviceRules(rules);
    expect(runDeviceProgram(prog, DEV_CHAR, 1, 11, ACC_READ)).toBe(1);
    expect(runDeviceProgram(prog, DEV_CHAR, 1, 11, RW)).toBe(0);
    expect(runDeviceProgram(docker, DEV_CHAR, 1, 11, ACC_READ)).toBe(0);
  });

  it('"a *:* rwm" allows everything; an empty list denies everything', () => {
    const all = compileDeviceRules(['a *:* rwm']);
    expect(all).toHaveLength(6 + 2 + 2); // loads, return 1, return 0: no test at all
    expect(runDeviceProgram(all, DEV_BLOCK, 8, 0, RW | ACC_MKNOD)).toBe(1);
    const none = compileDeviceRules([]);
    expect(runDeviceProgram(none, DEV_CHAR, 1, 3, ACC_READ)).toBe(0);
  });

  it('encodes struct bpf_insn: opcode, registers, offset, immediate, little endian', () => {
    const buf = encodeProgram(compileDeviceRules(['c 1:3 r']));
    expect(buf.length % 8).toBe(0);
    expect([...buf.subarray(0, 8)]).toEqual([0x61, 0x12, 0, 0, 0, 0, 0, 0]); // r2 = *(u32 *)(r1 + 0)
    expect([...buf.subarray(8, 16)]).toEqual([0x54, 0x02, 0, 0, 0xff, 0xff, 0, 0]); // w2 &= 0xffff
    expect([...buf.subarray(buf.length - 8)]).toEqual([0x95, 0, 0, 0, 0, 0, 0, 0]); // exit
    // the first test of the rule jumps over the rest of its block (7 more instructions)
    expect([...buf.subarray(48, 56)]).toEqual([0x55, 0x02, 7, 0, 2, 0, 0, 0]); // if r2 != 2 (char) goto +7
  });

  it('refuses a malformed rule, naming it', () => {
    expect(() => compileDeviceRules(['c 1:3 x'])).toThrow(/set device rule "c 1:3 x"/);
    expect(() => compileDeviceRules(['c 99999999999:1 r'])).toThrow(/out of range/);
  });
});
