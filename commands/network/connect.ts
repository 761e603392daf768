import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { connectNetwork } from '../../src/index.js';

export default class NetworkConnect extends TspodCommand {
  static override description = 'connect a running container to a network (a new interface eth1, eth2…)';
  static override args = {
    network: Args.string({ required: true, description: 'network name' }),
    container: Args.string({ required: true, description: 'container name or id' }),
  };
  static override flags = {
    ip: Flags.string({ description: 'IPv4 address on the network' }),
    alias: Flags.string({ multiple: true, description: 'add a network-scoped alias for the container' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NetworkConnect);
    await connectNetwork(args.network, args.container, { roots: this.roots(flags), ip: flags.ip, aliases: flags.alias });
  }
}
