import { describe, expect, it } from 'vitest';
import { resolveUser } from '../../../src/runtime/user.js';

const passwd = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\napp:x:1000:1000::/home/app:/bin/sh\n';
const group = 'root:x:0:root\nwheel:x:10:root,app\naudio:x:29:app\napp:x:1000:\nnogroup:x:65534:\n';
const files = (p: Record<string, string>) => ({ read: async (path: string) => (path in p ? Buffer.from(p[path]!) : undefined) });
const image = files({ '/etc/passwd': passwd, '/etc/group': group });

describe('resolveUser', () => {
  it('defaults to root with HOME from passwd', async () => {
    expect(await resolveUser('', image)).toEqual({ uid: 0, gid: 0, additionalGids: [0, 10], home: '/root' });
  });
  it('resolves a name to its uid, gid, supplementary groups and home', async () => {
    expect(await resolveUser('app', image)).toEqual({ uid: 1000, gid: 1000, additionalGids: [1000, 10, 29], home: '/home/app' });
  });
  it('puts the primary group first in the supplementary list, as docker (containerd) does', async () => {
    expect((await resolveUser('nobody', image)).additionalGids).toEqual([65534]);
    expect((await resolveUser('app:audio', image)).additionalGids).toEqual([29, 10]);
  });
  it('takes numeric uid:gid, also for ids absent from passwd', async () => {
    expect(await resolveUser('1000:1000', image)).toMatchObject({ uid: 1000, gid: 1000, home: '/home/app' });
    expect(await resolveUser('4242', image)).toEqual({ uid: 4242, gid: 0, additionalGids: [0], home: '/' });
    expect(await resolveUser('nobody:audio', image)).toMatchObject({ uid: 65534, gid: 29 });
  });
  it('names the user or group it cannot find', async () => {
    await expect(resolveUser('ghost', image)).rejects.toThrow('unable to find user ghost');
    await expect(resolveUser('app:ghosts', image)).rejects.toThrow('unable to find group ghosts');
  });
  it('works on an image without /etc/passwd for numeric users and root', async () => {
    expect(await resolveUser('', files({}))).toEqual({ uid: 0, gid: 0, additionalGids: [0], home: '/root' });
    await expect(resolveUser('app', files({}))).rejects.toThrow('unable to find user app');
  });
});
