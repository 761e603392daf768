import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { killContainer } from '../src/index.js';
import { forEachContainer } from '../src/cli/each.js';

export default class Kill extends TspodCommand {
  static override description = 'send a signal (default SIGKILL) to one or more running containers';
  static override strict = false;
  static override args = { container: Args.string({ required: true, description: 'container name or ID (prefix)' }) };
  static override flags = {
    signal: Flags.string({ char: 's', default: 'KILL', description: 'signal to send (name or number)' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Kill);
    await forEachContainer(argv as string[], (ref) => killContainer(this.roots(flags), ref, flags.signal));
  }
}
