import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { removeContainer } from '../src/index.js';
import { messageOf } from '../src/util/errors.js';

export default class Rm extends TspodCommand {
  static override description = 'remove one or more containers';
  static override strict = false;
  static override args = { container: Args.string({ required: true, description: 'container name or ID (prefix)' }) };
  static override flags = {
    force: Flags.boolean({ char: 'f', description: 'force the removal of a running container (SIGKILL)' }),
    volumes: Flags.boolean({ char: 'v', description: 'remove the anonymous volumes of the container' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Rm);
    let failed = false;
    for (const ref of argv as string[]) {
      try {
        await removeContainer(ref, { roots: this.roots(flags), force: flags.force, volumes: flags.volumes });
        process.stdout.write(ref + '\n');
      } catch (err) {
        failed = true;
        process.stderr.write(`tspod: ${messageOf(err)}\n`);
      }
    }
    if (failed) process.exitCode = 1;
  }
}
