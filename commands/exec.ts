import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { execInContainer } from '../src/index.js';
import { splitAtFirstPositional } from '../src/cli/argv.js';

export default class Exec extends TspodCommand {
  static override description = 'run a command in a running container (joins its namespaces and cgroup, same security settings)';
  static override strict = false;
  static override usage = 'exec [FLAGS] CONTAINER COMMAND [ARG...]';
  static override args = { container: Args.string({ required: true, description: 'container name or ID (prefix)' }) };
  static override flags = {
    interactive: Flags.boolean({ char: 'i', description: 'keep stdin open (without it the command reads nothing)' }),
    tty: Flags.boolean({ char: 't', description: 'allocate a pseudo-TTY' }),
    user: Flags.string({ char: 'u', description: 'user name or uid[:gid]' }),
    workdir: Flags.string({ char: 'w', description: 'working directory inside the container' }),
    env: Flags.string({ char: 'e', multiple: true, description: 'set environment variables' }),
    'env-file': Flags.string({ multiple: true, description: 'read environment variables from a file' }),
  };

  async run(): Promise<void> {
    const { head, rest } = splitAtFirstPositional(this.argv, Exec.flags);
    // "--" before the container: a repeatable flag (-e) would otherwise swallow it as a value.
    // Only when the split found a positional: a sentinel tells it apart from a trailing flag value.
    const hasContainer = splitAtFirstPositional([...this.argv, '\0container?'], Exec.flags).head.at(-1) !== '\0container?';
    const { args, flags } = await this.parse(Exec, hasContainer && head.length > 1 ? [...head.slice(0, -1), '--', head.at(-1)!] : head);
    process.exitCode = await execInContainer(this.roots(flags), args.container, rest,
      { user: flags.user, workdir: flags.workdir, env: flags.env, envFile: flags['env-file'], tty: flags.tty, interactive: flags.interactive });
  }
}
