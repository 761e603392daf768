import { describe, expect, it } from 'vitest';
import { OVERLAY_OPTIONS_MAX, overlayOptions, probeOverlayFeatures, type OverlayFeatures } from '../../../src/mount/overlay.js';

const none: OverlayFeatures = { index: false, redirectDir: false, userxattr: false, inUserNamespace: false };
const all: OverlayFeatures = { index: true, redirectDir: true, userxattr: true, inUserNamespace: false };

describe('overlayOptions', () => {
  it('gives lowers relative to the store, top first, and upper/work absolute while that fits', () => {
    expect(overlayOptions({ chdir: '/s', lowers: ['l/bbb', 'l/aaa'], upper: '/s/snapshots/1/upper', work: '/s/snapshots/1/work', emptyLower: '/c/empty', features: none }))
      .toEqual({ data: 'lowerdir=l/bbb:l/aaa,upperdir=/s/snapshots/1/upper,workdir=/s/snapshots/1/work', chdir: '/s' });
  });
  it('switches upper/work to relative exactly when the absolute form plus NUL passes 4096 bytes', () => {
    const req = (n: number) => {
      const s = '/' + 'r'.repeat(n);
      return { chdir: s, lowers: ['l/a'], upper: s + '/u', work: s + '/w', emptyLower: '/e', features: none };
    };
    // length = "lowerdir=l/a,upperdir=" (22) + n+3 + ",workdir=" (9) + n+3 = 2n + 37
    expect(overlayOptions(req(2029)).data.length).toBe(4095);
    expect(overlayOptions(req(2029)).data).toContain(',upperdir=/rrr');
    expect(overlayOptions(req(2030)).data).toBe('lowerdir=l/a,upperdir=u,workdir=w');
  });
  it('keeps paths outside the store absolute, and uses the empty dir for an image without layers', () => {
    expect(overlayOptions({ chdir: '/s', lowers: [], upper: '/u', work: '/w', emptyLower: '/c/empty', features: none }).data)
      .toBe('lowerdir=/c/empty,upperdir=/u,workdir=/w');
  });
  it('turns off index and redirect_dir when the kernel knows them; userxattr only in a user namespace', () => {
    const req = { chdir: '/s', lowers: ['l/a'], upper: '/s/u', work: '/s/w', emptyLower: '/e' };
    expect(overlayOptions({ ...req, features: all }).data).toBe('lowerdir=l/a,upperdir=/s/u,workdir=/s/w,index=off,redirect_dir=off');
    expect(overlayOptions({ ...req, features: { ...all, inUserNamespace: true } }).data).toMatch(/,userxattr$/);
  });
  it('refuses paths that would break the option string', () => {
    expect(() => overlayOptions({ chdir: '/s', lowers: ['l/a,b'], upper: '/u', work: '/w', emptyLower: '/e', features: none })).toThrow(/comma, colon/);
  });
  it('fits 200 short-linked layers whatever the store path length', () => {
    const store = '/' + 'x'.repeat(3000);
    const lowers = Array.from({ length: 200 }, (_, i) => 'l/' + i.toString(16).padStart(12, '0'));
    const { data } = overlayOptions({ chdir: store, lowers, upper: store + '/snapshots/c/upper', work: store + '/snapshots/c/work', emptyLower: '/e', features: all });
    expect(data.length + 1).toBeLessThanOrEqual(OVERLAY_OPTIONS_MAX);
    expect(data).not.toContain('xxx');
  });
  it('refuses, saying how many bytes, exactly when the string plus NUL exceeds one page', () => {
    const fill = (n: number) => {
      // "lowerdir=" + lowers + ",upperdir=u,workdir=w" = n bytes
      const fixed = 'lowerdir='.length + ',upperdir=u,workdir=w'.length;
      return overlayOptions({ chdir: '/s', lowers: ['l/' + 'a'.repeat(n - fixed - 2)], upper: '/s/u', work: '/s/w', emptyLower: '/e', features: none });
      // (the absolute form is 4 bytes longer, so these lengths are the relative form's)
    };
    expect(fill(4095).data.length).toBe(4095);
    expect(() => fill(4096)).toThrow(/1 layers need 4097 bytes of options \(with the NUL\), more than the kernel's 4096/);
  });
  it('probes the running kernel', () => {
    const f = probeOverlayFeatures();
    expect(typeof f.index).toBe('boolean');
    expect(f.inUserNamespace).toBe(false); // tests run as root in the initial user namespace
  });
});
