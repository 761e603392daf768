import { Flags } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { listNetworks } from '../../src/index.js';
import { table } from '../../src/cli/format.js';

export default class NetworkLs extends TspodCommand {
  static override description = 'list networks';
  static override aliases = ['network:list'];
  static override flags = {
    quiet: Flags.boolean({ char: 'q', description: 'only show network names' }),
    json: Flags.boolean({ description: 'print JSON' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(NetworkLs);
    const list = await listNetworks({ roots: this.roots(flags) });
    if (flags.json) return void process.stdout.write(JSON.stringify(list, null, 2) + '\n');
    if (flags.quiet) return void process.stdout.write(list.map((n) => n.name + '\n').join(''));
    process.stdout.write(table(['NETWORK ID', 'NAME', 'DRIVER', 'BRIDGE', 'SUBNET', 'GATEWAY', 'CONTAINERS'],
      list.map((n) => [n.id.slice(0, 12), n.name, n.driver, n.bridge, n.subnet, n.gateway, String(n.containers.length)])));
  }
}
