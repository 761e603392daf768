import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { removeContainer } from '../src/index.js';
import { forEachContainer } from '../src/cli/each.js';

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
    await forEachContainer(argv as string[], (ref) => removeContainer(ref, { roots: this.roots(flags), force: flags.force, volumes: flags.volumes }));
  }
}
