import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { killContainer } from '../src/index.js';
import { messageOf } from '../src/util/errors.js';

export default class Kill extends TspodCommand {
  static override description = 'send a signal (default SIGKILL) to one or more running containers';
  static override strict = false;
  static override args = { container: Args.string({ required: true, description: 'container name or ID (prefix)' }) };
  static override flags = {
    signal: Flags.string({ char: 's', default: 'KILL', description: 'signal to send (name or number)' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Kill);
    let failed = false;
    for (const ref of argv as string[]) {
      try {
        await killContainer(this.roots(flags), ref, flags.signal);
        process.stdout.write(ref + '\n');
      } catch (err) {
        failed = true;
        process.stderr.write(`tspod: ${messageOf(err)}\n`);
      }
    }
    if (failed) process.exitCode = 1;
  }
}
