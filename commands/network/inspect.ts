import { Args } from '@oclif/core';
import { TspodCommand } from '../../src/cli/base.js';
import { inspectNetwork } from '../../src/index.js';

export default class NetworkInspect extends TspodCommand {
  static override description = 'show a network as JSON: subnet, gateway, bridge and the containers on it';
  static override strict = false;
  static override args = { name: Args.string({ required: true, description: 'network name or id' }) };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(NetworkInspect);
    const out = [];
    for (const n of argv as string[]) out.push(await inspectNetwork(n, { roots: this.roots(flags) }));
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  }
}
