import { Args } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { disconnectNetwork } from '../../src/index.js';

export default class NetworkDisconnect extends TspodCommand {
  static override description = 'disconnect a container from a network';
  static override args = {
    network: Args.string({ required: true, description: 'network name' }),
    container: Args.string({ required: true, description: 'container name or id' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NetworkDisconnect);
    await disconnectNetwork(args.network, args.container, { roots: this.roots(flags) });
  }
}
