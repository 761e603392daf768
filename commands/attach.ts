import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { attachContainer } from '../src/index.js';

/**
 * attach: connects to a running container through its monitor (src/container/attach.ts): its output
 * from now on, the user's input when the container has stdin open (-i), the terminal (raw mode, window
 * size) when it has one (-t). Detach with ctrl-p ctrl-q (--detach-keys); without a terminal Ctrl-C
 * detaches too. When the container exits, attach exits with its status.
 */
export default class Attach extends TspodCommand {
  static override description = "attach local standard input, output, and error streams to a running container";
  static override args = { container: Args.string({ required: true, description: 'container name or ID (prefix)' }) };
  static override flags = {
    'detach-keys': Flags.string({ description: 'override the key sequence for detaching a container (default ctrl-p,ctrl-q)' }),
    'no-stdin': Flags.boolean({ description: 'do not attach STDIN' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Attach);
    const ac = new AbortController();
    const onInt = () => ac.abort();
    process.on('SIGINT', onInt); // only reaches us when the terminal is not raw
    try {
      const r = await attachContainer(this.roots(flags), args.container, { noStdin: flags['no-stdin'], detachKeys: flags['detach-keys'], signal: ac.signal });
      process.exitCode = r.detached ? 0 : r.exitCode ?? 0;
    } finally {
      process.off('SIGINT', onInt);
    }
  }
}
