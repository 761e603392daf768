// `commit -c` instructions (docker commit --change): parsing and application to the image config.
import { describe, expect, it } from 'vitest';
import { applyChange, parseChange } from '../../../src/image/commit.js';
import type { ExecConfig } from '../../../src/oci/types.js';
import { TspodError } from '../../../src/util/errors.js';

function apply(base: ExecConfig, ...changes: string[]): ExecConfig {
  const c = structuredClone(base);
  for (const ch of changes) applyChange(c, parseChange(ch));
  return c;
}

describe('commit -c', () => {
  it('takes CMD and ENTRYPOINT in exec (JSON) and shell form', () => {
    expect(apply({}, 'CMD ["nginx", "-g", "daemon off;"]').Cmd).toEqual(['nginx', '-g', 'daemon off;']);
    expect(apply({}, 'CMD echo hi there').Cmd).toEqual(['/bin/sh', '-c', 'echo hi there']);
    expect(apply({}, 'entrypoint ["/init"]').Entrypoint).toEqual(['/init']);
  });

  it('sets ENV (replacing an existing key, both syntaxes), LABEL, WORKDIR, USER, STOPSIGNAL', () => {
    const c = apply({ Env: ['PATH=/bin', 'A=1'] }, 'ENV A=2 B="two words"', 'ENV C three words', 'LABEL version=1.0 "maintainer"=me',
      'WORKDIR /srv', 'USER 1000:1000', 'STOPSIGNAL SIGQUIT');
    expect(c.Env).toEqual(['PATH=/bin', 'A=2', 'B=two words', 'C=three words']);
    expect(c.Labels).toEqual({ version: '1.0', maintainer: 'me' });
    expect(c).toMatchObject({ WorkingDir: '/srv', User: '1000:1000', StopSignal: 'SIGQUIT' });
  });

  it('adds EXPOSE ports (tcp by default) and VOLUMEs', () => {
    const c = apply({ ExposedPorts: { '22/tcp': {} } }, 'EXPOSE 80 53/udp', 'VOLUME ["/data", "/logs"]', 'VOLUME /cache');
    expect(c.ExposedPorts).toEqual({ '22/tcp': {}, '80/tcp': {}, '53/udp': {} });
    expect(c.Volumes).toEqual({ '/data': {}, '/logs': {}, '/cache': {} });
  });

  it('refuses what it cannot apply, naming the change', () => {
    for (const bad of ['RUN apk add curl', 'EXPOSE 99999', 'EXPOSE http', 'ENV', 'ENV =x', '', 'CMD']) {
      let err: unknown;
      try {
        parseChange(bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(TspodError);
      expect((err as TspodError).code).toBe('EINVAL');
      expect((err as TspodError).message).toContain(`"${bad}"`);
    }
  });
});
