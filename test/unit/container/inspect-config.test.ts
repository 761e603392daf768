import { describe, expect, it } from 'vitest';
import { inspectConfig, inspectHostConfig, portBindings } from '../../../src/container/inspect-config.js';
import type { ImageConfig } from '../../../src/oci/types.js';

const image: ImageConfig = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] },
  config: { Env: ['PATH=/usr/bin:/bin', 'A=image'], Cmd: ['/bin/sh'], Entrypoint: ['/init'], WorkingDir: '/srv', User: 'nobody' } };
const id = 'abcdef0123456789'.repeat(4);

describe('inspectConfig', () => {
  it("merges as docker's daemon does: the user's Env first, the image's variables the user did not set after", () => {
    const c = inspectConfig(image, { id, env: ['A=1', 'B=2'] });
    expect(c).toEqual({ Hostname: id.slice(0, 12), User: 'nobody', Env: ['A=1', 'B=2', 'PATH=/usr/bin:/bin'], Cmd: ['/bin/sh'], Entrypoint: ['/init'], WorkingDir: '/srv' });
  });
  it('a command replaces Cmd; --entrypoint drops the image Cmd; -u, -w, -h as given', () => {
    expect(inspectConfig(image, { id, env: [], command: ['echo', 'hi'] })).toMatchObject({ Cmd: ['echo', 'hi'], Entrypoint: ['/init'] });
    expect(inspectConfig(image, { id, env: [], entrypoint: 'top' })).toMatchObject({ Cmd: null, Entrypoint: ['top'] });
    expect(inspectConfig(image, { id, env: [], entrypoint: '', command: ['ls'] })).toMatchObject({ Cmd: ['ls'], Entrypoint: null });
    expect(inspectConfig(image, { id, env: [], user: '1000:1000', workdir: '/tmp', hostname: 'box' }))
      .toMatchObject({ User: '1000:1000', WorkingDir: '/tmp', Hostname: 'box' });
  });
  it("an image without config gives docker's empty values", () => {
    const c = inspectConfig({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } } as ImageConfig, { id, env: [], command: ['x'] });
    expect(c).toEqual({ Hostname: id.slice(0, 12), User: '', Env: null, Cmd: ['x'], Entrypoint: null, WorkingDir: '' });
  });
});

describe('inspectHostConfig', () => {
  it("docker's PortBindings: HostIp and HostPort as given, empty when not", () => {
    expect(portBindings(['8080:80', '127.0.0.1:5353:53/udp', '9000', '8081:80'])).toEqual({
      '80/tcp': [{ HostIp: '', HostPort: '8080' }, { HostIp: '', HostPort: '8081' }],
      '53/udp': [{ HostIp: '127.0.0.1', HostPort: '5353' }],
      '9000/tcp': [{ HostIp: '', HostPort: '' }],
    });
  });
  it('the options as given, and docker zero values without them', () => {
    expect(inspectHostConfig({ id, env: [] })).toEqual({
      Binds: null, NetworkMode: 'bridge', PortBindings: {}, AutoRemove: false, CapAdd: null, CapDrop: null, Dns: [], DnsOptions: [], DnsSearch: [],
      ExtraHosts: null, Privileged: false, PublishAllPorts: false, ReadonlyRootfs: false, ShmSize: 67108864, NanoCpus: 0, PidsLimit: null,
    });
    expect(inspectHostConfig({ id, env: [], volumes: ['/h:/c:ro'], network: 'none', rm: true, capAdd: ['NET_ADMIN'], capDrop: ['ALL'], privileged: true,
      readOnly: true, shmSize: '128m', cpus: '1.5', pidsLimit: 50, addHosts: ['a:1.2.3.4'], publishAll: true })).toMatchObject({
      Binds: ['/h:/c:ro'], NetworkMode: 'none', AutoRemove: true, CapAdd: ['NET_ADMIN'], CapDrop: ['ALL'], Privileged: true, ReadonlyRootfs: true,
      ShmSize: 128 * 1024 * 1024, NanoCpus: 1_500_000_000, PidsLimit: 50, ExtraHosts: ['a:1.2.3.4'], PublishAllPorts: true,
    });
  });
});
