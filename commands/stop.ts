import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { stopContainer } from '../src/index.js';
import { forEachContainer } from '../src/cli/each.js';

export default class Stop extends TspodCommand {
  static override description = 'stop one or more running containers (SIGTERM, then SIGKILL after the timeout)';
  static override strict = false;
  static override args = { container: Args.string({ required: true, description: 'container name or ID (prefix)' }) };
  static override flags = {
    time: Flags.integer({ char: 't', description: "seconds to wait before killing the container (default: the container's --stop-timeout, else 10)" }),
    signal: Flags.string({ char: 's', description: 'signal to send first (default SIGTERM)' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Stop);
    await forEachContainer(argv as string[], (ref) => stopContainer(this.roots(flags), ref, { timeoutSeconds: flags.time, signal: flags.signal }));
  }
}
