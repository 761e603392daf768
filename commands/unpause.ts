import { Args } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { pauseContainer } from '../src/index.js';
import { forEachContainer } from '../src/cli/each.js';

export default class Unpause extends TspodCommand {
  static override description = 'unpause all processes within one or more containers (cgroup freezer)';
  static override strict = false;
  static override args = { container: Args.string({ required: true, description: 'container name or ID (prefix)' }) };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Unpause);
    await forEachContainer(argv as string[], (ref) => pauseContainer(this.roots(flags), ref, false));
  }
}
