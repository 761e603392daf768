import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { attachContainer } from '../src/index.js';
import { boolFlagValues } from '../src/cli/bool-flags.js';

/**
 * attach: connects to a running container through its monitor (src/container/attach.ts): its output
 * from now on, the user's input when the container has stdin open (-i), the terminal (raw mode, window
 * size) when it has one (-t). Detach with ctrl-p ctrl-q (--detach-keys). Without a terminal, signals
 * to tspod go to the container (--sig-proxy, docker's default); with --sig-proxy=false Ctrl-C detaches.
 * When the container exits, attach exits with its status.
 */
export default class Attach extends TspodCommand {
  static override description = "attach local standard input, output, and error streams to a running container";
  static override args = { container: Args.string({ required: true, description: 'container name or ID (prefix)' }) };
  static override flags = {
    'detach-keys': Flags.string({ description: 'override the key sequence for detaching a container (default ctrl-p,ctrl-q)' }),
    'no-stdin': Flags.boolean({ description: 'do not attach STDIN' }),
    'sig-proxy': Flags.boolean({ default: true, allowNo: true, description: 'proxy all received signals to the container (not with a terminal); --sig-proxy=false or --no-sig-proxy: Ctrl-C detaches' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Attach, boolFlagValues(this.argv, ['sig-proxy']));
    const r = await attachContainer(this.roots(flags), args.container, {
      noStdin: flags['no-stdin'], detachKeys: flags['detach-keys'], sigProxy: flags['sig-proxy'], interruptDetaches: true,
    });
    process.exitCode = r.detached ? 0 : r.exitCode ?? 0;
  }
}

