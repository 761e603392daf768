import { Args } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { pauseContainer } from '../src/index.js';
import { messageOf } from '../src/util/errors.js';

export default class Unpause extends TspodCommand {
  static override description = 'unpause all processes within one or more containers (cgroup freezer)';
  static override strict = false;
  static override args = { container: Args.string({ required: true, description: 'container name or ID (prefix)' }) };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Unpause);
    let failed = false;
    for (const ref of argv as string[]) {
      try {
        await pauseContainer(this.roots(flags), ref, false);
        process.stdout.write(ref + '\n');
      } catch (err) {
        failed = true;
        process.stderr.write(`tspod: ${messageOf(err)}\n`);
      }
    }
    if (failed) process.exitCode = 1;
  }
}
