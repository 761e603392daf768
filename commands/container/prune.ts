import { Flags } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { confirm } from '../../src/cli/confirm.js';
import { humanSize } from '../../src/cli/format.js';
import { pruneContainers } from '../../src/index.js';

export default class ContainerPrune extends TspodCommand {
  static override description = 'remove all stopped containers';
  static override flags = {
    force: Flags.boolean({ char: 'f', description: 'do not prompt for confirmation' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ContainerPrune);
    if (!flags.force && !(await confirm('WARNING! This will remove all stopped containers.'))) return;
    const res = await pruneContainers({ roots: this.roots(flags) });
    if (res.deleted.length) process.stdout.write(`Deleted Containers:\n${res.deleted.join('\n')}\n\n`);
    process.stdout.write(`Total reclaimed space: ${humanSize(res.reclaimed)}\n`);
  }
}
