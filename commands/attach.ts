import { Args } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { containerLogs, waitContainer, inspectContainer } from '../src/index.js';
import { fail } from '../src/util/errors.js';

/**
 * attach: streams the running container's output from now on until it exits, then exits with its
 * status. Output only: the monitor does not take input (detached containers have stdin on
 * /dev/null), so stdin is not forwarded. Ctrl-C detaches, the container keeps running.
 */
export default class Attach extends TspodCommand {
  static override description = "attach to a running container's output (stdout/stderr) until it exits";
  static override args = { container: Args.string({ required: true, description: 'container name or ID (prefix)' }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Attach);
    const roots = this.roots(flags);
    const info = (await inspectContainer(roots, args.container)) as { State: { Running: boolean } };
    if (!info.State.Running) throw fail('ESTATE', `cannot attach to container ${args.container}: it is not running`);
    const ac = new AbortController();
    process.once('SIGINT', () => ac.abort());
    await containerLogs(roots, args.container, {
      follow: true, tail: 0, signal: ac.signal,
      write: (s, t) => (s === 'stderr' ? process.stderr : process.stdout).write(t),
    });
    if (!ac.signal.aborted) process.exitCode = await waitContainer(roots, args.container);
  }
}
