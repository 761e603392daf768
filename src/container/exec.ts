/**
 * exec: runs a command in a running container. TypeScript derives the plan from the container's
 * own launch plan (same capabilities, no-new-privs, seccomp program, rlimits, user unless -u),
 * adds `join PID STARTTIME`, and the native launcher does the rest in C (native/join.c): it pins
 * the init by pid + start time, joins its pid namespace, forks, and the child — once this process
 * has put it into the container's cgroup — joins ipc, uts, net, cgroup and mount namespaces,
 * takes the init's root and execs. Runs in the foreground like `docker exec`; stdio is passed through.
 */
import { lstat, readFile } from 'node:fs/promises';
import type { EngineRoots } from '../state/paths.js';
import { launch } from '../runtime/launcher.js';
import { resolveUser } from '../runtime/user.js';
import { fail } from '../util/errors.js';
import { containerStore, isActive, openCgroup } from './reconcile.js';
import { freshRecord } from './list.js';
import { loadPlan } from './start.js';
import { readEnvFiles, withTerminal } from './run-options.js';

export interface ExecOptions {
  /** -t: a pseudo-terminal (the launcher relays it); with -i the caller's terminal goes to raw mode. */
  tty?: boolean;
  interactive?: boolean;
  env?: string[];
  /** --env-file: read before -e, which wins. */
  envFile?: string[];
  user?: string;
  workdir?: string;
}

export async function execInContainer(roots: EngineRoots, ref: string, command: string[], opts: ExecOptions = {}): Promise<number> {
  if (command.length === 0) throw fail('EINVAL', 'exec: no command given');
  const containers = containerStore(roots);
  const rec = await freshRecord(containers, await containers.find(ref));
  if (rec.state === 'paused') throw fail('ESTATE', `container ${ref} is paused, unpause the container before exec`);
  if (!isActive(rec) || !rec.pid || rec.pidStart === undefined) throw fail('ESTATE', `container ${ref} is not running`);
  const plan = await loadPlan(containers, rec.id);
  const pid = rec.pid;

  const env = new Map(plan.env.map((e) => [e.slice(0, e.indexOf('=')), e] as const));
  let user = plan.user;
  if (opts.user !== undefined) {
    // The container's own /etc/passwd and /etc/group, read through its root; a symlink there is not followed.
    const r = await resolveUser(opts.user, {
      async read(path: string) {
        const p = `/proc/${pid}/root${path}`;
        try {
          if ((await lstat(p)).isSymbolicLink()) return undefined;
          return await readFile(p);
        } catch {
          return undefined;
        }
      },
    });
    user = { uid: r.uid, gid: r.gid, additionalGids: r.additionalGids };
    env.set('HOME', `HOME=${r.home}`);
  }
  for (const e of [...(await readEnvFiles(opts.envFile)), ...(opts.env ?? [])]) {
    const i = e.indexOf('=');
    if (i === 0) throw fail('EINVAL', `invalid environment variable "${e}"`);
    if (i > 0) env.set(e.slice(0, i), e);
    else if (process.env[e] !== undefined) env.set(e, `${e}=${process.env[e]}`);
  }
  if (opts.workdir !== undefined && !opts.workdir.startsWith('/')) throw fail('EINVAL', `exec -w "${opts.workdir}": the working directory must be absolute`);

  const cgroup = await openCgroup(rec);
  const joinPlan = {
    ...plan,
    args: command,
    env: [...env.values()],
    user,
    cwd: opts.workdir ?? plan.cwd,
    mkdirCwd: false,
    tty: !!opts.tty,
    join: { pid, startTime: rec.pidStart },
  };
  const result = await withTerminal(opts, (term) => launch(joinPlan, { ...term, onPid: async (p) => { await cgroup?.addProcess(p); } }));
  return result.exitCode;
}
