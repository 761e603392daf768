import { Args } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { waitContainer } from '../src/index.js';
import { messageOf } from '../src/util/errors.js';

export default class Wait extends TspodCommand {
  static override description = 'block until one or more containers stop, then print their exit codes';
  static override strict = false;
  static override args = { container: Args.string({ required: true, description: 'container name or ID (prefix)' }) };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Wait);
    let failed = false;
    for (const ref of argv as string[]) {
      try {
        process.stdout.write(`${await waitContainer(this.roots(flags), ref)}\n`);
      } catch (err) {
        failed = true;
        process.stderr.write(`tspod: ${messageOf(err)}\n`);
      }
    }
    if (failed) process.exitCode = 1;
  }
}
