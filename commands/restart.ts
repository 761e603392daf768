import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { restartContainer } from '../src/index.js';
import { messageOf } from '../src/util/errors.js';

export default class Restart extends TspodCommand {
  static override description = 'restart one or more containers';
  static override strict = false;
  static override args = { container: Args.string({ required: true, description: 'container name or ID (prefix)' }) };
  static override flags = {
    time: Flags.integer({ char: 't', description: "seconds to wait before killing the container (default: the container's --stop-timeout, else 10)" }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Restart);
    let failed = false;
    for (const ref of argv as string[]) {
      try {
        await restartContainer(this.roots(flags), ref, { timeoutSeconds: flags.time });
        process.stdout.write(ref + '\n');
      } catch (err) {
        failed = true;
        process.stderr.write(`tspod: ${messageOf(err)}\n`);
      }
    }
    if (failed) process.exitCode = 1;
  }
}
