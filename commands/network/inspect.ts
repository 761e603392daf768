import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { dockerNetwork, inspectNetwork } from '../../src/index.js';
import { printInspected } from '../../src/cli/template.js';

export default class NetworkInspect extends TspodCommand {
  static override description = 'display detailed information on one or more networks (JSON, as docker network inspect)';
  static override strict = false;
  static override args = { name: Args.string({ required: true, description: 'network name or id' }) };
  static override flags = {
    format: Flags.string({ char: 'f', description: 'a Go template for each network: "{{.Name}}", "{{json .IPAM.Config}}"' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(NetworkInspect);
    await printInspected(argv as string[], flags.format, async (n) => dockerNetwork(await inspectNetwork(n, { roots: this.roots(flags) })));
  }
}
