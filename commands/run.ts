import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { run } from '../src/index.js';
import { splitAtFirstPositional } from '../src/cli/argv.js';
import { shortId } from '../src/cli/format.js';
import { fail } from '../src/util/errors.js';

export default class Run extends TspodCommand {
  static override description = 'run a command in a new container';
  static override engineErrorExit = 125;
  static override strict = false;
  static override usage = 'run [FLAGS] IMAGE [COMMAND] [ARG...]';
  static override examples = [
    "<%= config.bin %> run --rm alpine:3.19 /bin/sh -c 'cat /etc/alpine-release; hostname; ps'",
    '<%= config.bin %> run --rm --memory 64m --cpus 0.5 --pids-limit 100 alpine:3.19 sh',
  ];
  static override args = { image: Args.string({ required: true, description: 'image reference or ID' }) };
  static override flags = {
    rm: Flags.boolean({ description: 'remove the container when it exits' }),
    name: Flags.string({ description: 'assign a name to the container' }),
    hostname: Flags.string({ char: 'h', description: 'container host name' }),
    env: Flags.string({ char: 'e', multiple: true, description: 'set environment variables (KEY=VALUE, or KEY to pass the caller\'s value)' }),
    user: Flags.string({ char: 'u', description: 'user name or uid[:gid]' }),
    workdir: Flags.string({ char: 'w', description: 'working directory inside the container' }),
    entrypoint: Flags.string({ description: 'overwrite the default entrypoint of the image' }),
    memory: Flags.string({ char: 'm', description: 'memory limit (e.g. 64m, 1g)' }),
    cpus: Flags.string({ description: 'number of CPUs (e.g. 0.5)' }),
    'pids-limit': Flags.integer({ description: 'tune the container pids limit (-1 for unlimited)' }),
    'cgroup-parent': Flags.string({ description: 'parent cgroup for the container' }),
    network: Flags.string({ aliases: ['net'], default: 'none', description: 'network mode: none or host' }),
    platform: Flags.string({ description: 'platform to pull if the image is missing (os/arch[/variant])' }),
    interactive: Flags.boolean({ char: 'i', description: 'keep stdin open (stdin is always passed through)' }),
    tty: Flags.boolean({ char: 't', description: 'allocate a pseudo-TTY (not supported yet)' }),
  };

  async run(): Promise<void> {
    const { head, rest } = splitAtFirstPositional(this.argv, Run.flags);
    const { args, flags } = await this.parse(Run, head);
    if (flags.tty) throw fail('EINVAL', 'run -t: pseudo-terminals are not supported yet; run without -t');
    const result = await run({
      roots: this.roots(flags),
      image: args.image,
      command: rest,
      name: flags.name,
      hostname: flags.hostname,
      env: flags.env,
      user: flags.user,
      workdir: flags.workdir,
      entrypoint: flags.entrypoint,
      memory: flags.memory,
      cpus: flags.cpus,
      pidsLimit: flags['pids-limit'],
      cgroupParent: flags['cgroup-parent'],
      network: flags.network as 'none' | 'host',
      rm: flags.rm,
      platform: flags.platform,
      onPull: (e) => {
        if (e.type === 'missing') process.stderr.write(`Unable to find image '${e.image}' locally\n`);
        else if (e.type === 'layer' && e.status === 'done') process.stderr.write(`${shortId(e.digest)}: Pull complete\n`);
        else if (e.type === 'resolved') process.stderr.write(`Digest: ${e.digest}\n`);
      },
    });
    if (result.oomKilled) process.stderr.write(`tspod: container ${result.name} was killed: out of memory (its --memory limit)\n`);
    process.exitCode = result.exitCode;
  }
}
