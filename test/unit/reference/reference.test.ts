import { describe, expect, it } from 'vitest';
import {
  familiarName,
  familiarString,
  formatReference,
  parseReference,
  pullReference,
  registryApiHost,
} from '../../../src/reference/index.js';
import { TspodError } from '../../../src/util/errors.js';

const D = 'sha256:' + 'ab'.repeat(32);

describe('parseReference: valid references normalise like docker', () => {
  const table: [string, string, { registry: string; repository: string; tag?: string; digest?: string }, string][] = [
    // input, normalised, parts, familiar string
    ['alpine', 'docker.io/library/alpine:latest', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }, 'alpine:latest'],
    ['alpine:3.19', 'docker.io/library/alpine:3.19', { registry: 'docker.io', repository: 'library/alpine', tag: '3.19' }, 'alpine:3.19'],
    ['user/img', 'docker.io/user/img:latest', { registry: 'docker.io', repository: 'user/img', tag: 'latest' }, 'user/img:latest'],
    ['docker.io/alpine', 'docker.io/library/alpine:latest', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }, 'alpine:latest'],
    ['docker.io/library/alpine:edge', 'docker.io/library/alpine:edge', { registry: 'docker.io', repository: 'library/alpine', tag: 'edge' }, 'alpine:edge'],
    ['index.docker.io/library/alpine', 'docker.io/library/alpine:latest', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }, 'alpine:latest'],
    ['index.docker.io/user/x:1', 'docker.io/user/x:1', { registry: 'docker.io', repository: 'user/x', tag: '1' }, 'user/x:1'],
    ['docker.io/library/a/b', 'docker.io/library/a/b:latest', { registry: 'docker.io', repository: 'library/a/b', tag: 'latest' }, 'library/a/b:latest'],
    ['localhost/x', 'localhost/x:latest', { registry: 'localhost', repository: 'x', tag: 'latest' }, 'localhost/x:latest'],
    ['localhost:5000/x', 'localhost:5000/x:latest', { registry: 'localhost:5000', repository: 'x', tag: 'latest' }, 'localhost:5000/x:latest'],
    ['127.0.0.1:5000/x:tag', '127.0.0.1:5000/x:tag', { registry: '127.0.0.1:5000', repository: 'x', tag: 'tag' }, '127.0.0.1:5000/x:tag'],
    [`host.tld/a/b/c@${D}`, `host.tld/a/b/c@${D}`, { registry: 'host.tld', repository: 'a/b/c', digest: D }, `host.tld/a/b/c@${D}`],
    [`img:tag@${D}`, `docker.io/library/img:tag@${D}`, { registry: 'docker.io', repository: 'library/img', tag: 'tag', digest: D }, `img:tag@${D}`],
    [`img@${D}`, `docker.io/library/img@${D}`, { registry: 'docker.io', repository: 'library/img', digest: D }, `img@${D}`],
    [`localhost:5000/a/b:v1.2.3-rc_1@${D}`, `localhost:5000/a/b:v1.2.3-rc_1@${D}`, { registry: 'localhost:5000', repository: 'a/b', tag: 'v1.2.3-rc_1', digest: D }, `localhost:5000/a/b:v1.2.3-rc_1@${D}`],
    ['quay.io/coreos/etcd:v3.5', 'quay.io/coreos/etcd:v3.5', { registry: 'quay.io', repository: 'coreos/etcd', tag: 'v3.5' }, 'quay.io/coreos/etcd:v3.5'],
    ['[::1]:5000/x', '[::1]:5000/x:latest', { registry: '[::1]:5000', repository: 'x', tag: 'latest' }, '[::1]:5000/x:latest'],
    ['my-registry.example.com:443/a_b/c__d/e--f/g.h', 'my-registry.example.com:443/a_b/c__d/e--f/g.h:latest', { registry: 'my-registry.example.com:443', repository: 'a_b/c__d/e--f/g.h', tag: 'latest' }, 'my-registry.example.com:443/a_b/c__d/e--f/g.h:latest'],
    ['Foo.Bar/x', 'Foo.Bar/x:latest', { registry: 'Foo.Bar', repository: 'x', tag: 'latest' }, 'Foo.Bar/x:latest'],
    ['UPPER/x', 'UPPER/x:latest', { registry: 'UPPER', repository: 'x', tag: 'latest' }, 'UPPER/x:latest'], // docker: uppercase first component is a host
    ['localhost:5000', 'docker.io/library/localhost:5000', { registry: 'docker.io', repository: 'library/localhost', tag: '5000' }, 'localhost:5000'],
    ['a:' + 'T'.repeat(128), 'docker.io/library/a:' + 'T'.repeat(128), { registry: 'docker.io', repository: 'library/a', tag: 'T'.repeat(128) }, 'a:' + 'T'.repeat(128)],
    ['a:_x', 'docker.io/library/a:_x', { registry: 'docker.io', repository: 'library/a', tag: '_x' }, 'a:_x'],
  ];
  for (const [input, normal, parts, familiar] of table) {
    it(input.length > 60 ? input.slice(0, 60) + '…' : input, () => {
      const r = parseReference(input);
      expect(r).toEqual(parts);
      expect(formatReference(r)).toBe(normal);
      expect(familiarString(r)).toBe(familiar);
      // the normalised form parses to the same thing
      expect(parseReference(normal)).toEqual(parts);
    });
  }

  it('familiarName drops tag, digest, docker.io and library/', () => {
    expect(familiarName(parseReference('docker.io/library/alpine:3'))).toBe('alpine');
    expect(familiarName(parseReference('docker.io/user/x'))).toBe('user/x');
    expect(familiarName(parseReference(`localhost:5000/x@${D}`))).toBe('localhost:5000/x');
  });

  it('the digest wins for pulling, the tag is kept for naming', () => {
    const r = parseReference(`img:tag@${D}`);
    expect(pullReference(r)).toBe(D);
    expect(r.tag).toBe('tag');
    expect(pullReference(parseReference('img:1'))).toBe('1');
  });

  it('docker.io is served by registry-1.docker.io', () => {
    expect(registryApiHost('docker.io')).toBe('registry-1.docker.io');
    expect(registryApiHost('localhost:5000')).toBe('localhost:5000');
  });
});

describe('parseReference: invalid references fail with EINVAL naming the reference', () => {
  const table: [string, RegExp][] = [
    ['', /empty reference/],
    ['Alpine', /^invalid reference "Alpine": repository name must be lowercase$/],
    ['docker.io/Library/alpine', /must be lowercase/],
    ['localhost:5000/Foo', /must be lowercase/],
    ['ab'.repeat(32), /64-byte hexadecimal/],
    ['alpine:', /invalid tag ""/],
    ['alpine:-x', /invalid tag "-x"/],
    ['alpine:.x', /invalid tag/],
    ['alpine:' + 'a'.repeat(129), /invalid tag/],
    ['alpine@sha256:abc', /invalid digest "sha256:abc"/],
    [`alpine@sha256:${'AB'.repeat(32)}`, /invalid digest/],
    [`alpine@sha512:${'ab'.repeat(64)}`, /unsupported digest algorithm/],
    ['alpine@', /invalid digest ""/],
    [':tag', /missing repository name/],
    ['/alpine', /empty path component/],
    ['alpine/', /empty path component/],
    ['a//b', /empty path component/],
    ['a/-b', /invalid repository name component "-b"/],
    ['a/b_', /invalid repository name component "b_"/],
    ['a/b___c', /invalid repository name component/],
    ['a/b..c', /invalid repository name component/],
    ['localhost:5000/', /missing repository name|empty path component/],
    ['-host.com/x', /invalid registry host/],
    ['host.com:port/x', /invalid reference/],
    ['127.0.0.1:99999/x', /invalid port 99999 in registry host "127\.0\.0\.1:99999"/],
    ['localhost:0/x', /invalid port 0 in registry host/],
    ['al pine', /whitespace/],
    ['docker.io/' + 'a'.repeat(250), /longer than 255/],
    [`a:b:c`, /invalid/],
  ];
  for (const [input, re] of table) {
    it(JSON.stringify(input.length > 60 ? input.slice(0, 60) : input), () => {
      let err: unknown;
      try {
        parseReference(input);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TspodError);
      expect((err as TspodError).code).toBe('EINVAL');
      expect((err as TspodError).message).toMatch(re);
      expect((err as TspodError).message).toContain(`invalid reference "${input}"`);
    });
  }
});
