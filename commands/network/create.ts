import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { createNetwork } from '../../src/index.js';

export default class NetworkCreate extends TspodCommand {
  static override description = 'create a bridge network';
  static override examples = ['<%= config.bin %> network create --subnet 10.89.5.0/24 backend'];
  static override args = { name: Args.string({ required: true, description: 'network name' }) };
  static override flags = {
    subnet: Flags.string({ description: 'subnet in CIDR notation (default: the next free /24 of 10.89.0.0/16)' }),
    gateway: Flags.string({ description: 'gateway address (default: the first host address of the subnet)' }),
    driver: Flags.string({ char: 'd', default: 'bridge', description: 'network driver (only bridge)' }),
    'bridge-name': Flags.string({ description: 'host bridge interface name (default tspodN)' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NetworkCreate);
    if (flags.driver !== 'bridge') this.error(`network create: driver "${flags.driver}" is not supported (only bridge)`, { exit: 1 });
    const def = await createNetwork(args.name, { roots: this.roots(flags), subnet: flags.subnet, gateway: flags.gateway, bridge: flags['bridge-name'] });
    process.stdout.write(def.id + '\n');
  }
}
