import { Args } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { renameContainer } from '../src/index.js';

export default class Rename extends TspodCommand {
  static override description = 'rename a container';
  static override args = {
    container: Args.string({ required: true, description: 'container name or ID (prefix)' }),
    name: Args.string({ required: true, description: 'new name' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Rename);
    await renameContainer(this.roots(flags), args.container, args.name);
  }
}
