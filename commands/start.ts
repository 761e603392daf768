import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { startContainer, attachContainer } from '../src/index.js';
import { messageOf } from '../src/util/errors.js';
import { boolFlagValues } from '../src/cli/bool-flags.js';

export default class Start extends TspodCommand {
  static override description = 'start one or more stopped containers';
  static override strict = false;
  static override args = { container: Args.string({ required: true, description: 'container name or ID (prefix)' }) };
  static override flags = {
    attach: Flags.boolean({ char: 'a', description: "attach the container's output (and with -i its input) and exit with its status" }),
    interactive: Flags.boolean({ char: 'i', description: "attach the container's stdin (with -a)" }),
    'detach-keys': Flags.string({ description: 'override the key sequence for detaching a container (default ctrl-p,ctrl-q)' }),
    'sig-proxy': Flags.boolean({ default: true, allowNo: true, description: 'with -a: proxy all received signals to the container (not with a terminal)' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Start, boolFlagValues(this.argv, ['sig-proxy']));
    const roots = this.roots(flags);
    let failed = false;
    for (const ref of argv as string[]) {
      try {
        if (flags.attach || flags.interactive) {
          // Connected before the command runs (attach.ts), so none of its output is missed.
          const r = await attachContainer(roots, ref, { start: true, noStdin: !flags.interactive, detachKeys: flags['detach-keys'], sigProxy: flags['sig-proxy'], interruptDetaches: true });
          process.exitCode = r.detached ? 0 : r.exitCode ?? 0;
          return;
        }
        await startContainer(roots, ref);
        process.stdout.write(ref + '\n');
      } catch (err) {
        failed = true;
        process.stderr.write(`tspod: ${messageOf(err)}\n`);
      }
    }
    if (failed) process.exitCode = 1;
  }
}
