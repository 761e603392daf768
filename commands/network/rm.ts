import { Args } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { removeNetwork } from '../../src/index.js';

export default class NetworkRm extends TspodCommand {
  static override description = 'remove networks (they must have no containers)';
  static override aliases = ['network:remove'];
  static override strict = false;
  static override args = { name: Args.string({ required: true, description: 'network name' }) };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(NetworkRm);
    for (const n of argv as string[]) {
      await removeNetwork(n, { roots: this.roots(flags) });
      process.stdout.write(n + '\n');
    }
  }
}
