import { Args } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { containerDiff } from '../src/index.js';

export default class Diff extends TspodCommand {
  static override description = "inspect changes to files or directories on a container's filesystem (A added, C changed, D deleted)";
  static override args = { container: Args.string({ required: true, description: 'container name or ID (prefix)' }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Diff);
    for (const c of await containerDiff(args.container, { roots: this.roots(flags) })) process.stdout.write(`${c.kind} ${c.path}\n`);
  }
}
