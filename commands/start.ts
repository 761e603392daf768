import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { startContainer, waitContainer, containerLogs } from '../src/index.js';
import { messageOf } from '../src/util/errors.js';

export default class Start extends TspodCommand {
  static override description = 'start one or more stopped containers';
  static override strict = false;
  static override args = { container: Args.string({ required: true, description: 'container name or ID (prefix)' }) };
  static override flags = {
    attach: Flags.boolean({ char: 'a', description: "follow the container's output and exit with its status" }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Start);
    const roots = this.roots(flags);
    let failed = false;
    for (const ref of argv as string[]) {
      try {
        await startContainer(roots, ref);
        if (flags.attach) {
          await containerLogs(roots, ref, { follow: true, write: (s, t) => (s === 'stderr' ? process.stderr : process.stdout).write(t) });
          process.exitCode = await waitContainer(roots, ref);
          return;
        }
        process.stdout.write(ref + '\n');
      } catch (err) {
        failed = true;
        process.stderr.write(`tspod: ${messageOf(err)}\n`);
      }
    }
    if (failed) process.exitCode = 1;
  }
}
