import { Args } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { containerPorts } from '../src/index.js';

export default class Port extends TspodCommand {
  static override description = 'list port mappings of a container, or the one of PRIVATE_PORT[/PROTO]';
  static override args = {
    container: Args.string({ required: true, description: 'container name or ID (prefix)' }),
    port: Args.string({ required: false, description: 'PRIVATE_PORT[/PROTO]' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Port);
    const ports = await containerPorts(this.roots(flags), args.container, args.port);
    if (args.port !== undefined && ports.length === 0) {
      process.stderr.write(`tspod: no public port '${args.port.includes('/') ? args.port : args.port + '/tcp'}' published for ${args.container}\n`);
      process.exitCode = 1;
      return;
    }
    for (const p of ports) {
      const host = `${p.hostIp || '0.0.0.0'}:${p.hostPort}`;
      process.stdout.write(args.port !== undefined ? `${host}\n` : `${p.containerPort}/${p.protocol} -> ${host}\n`);
    }
  }
}
