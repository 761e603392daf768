import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { containerLogs } from '../src/index.js';

export default class Logs extends TspodCommand {
  static override description = 'fetch the logs of a container';
  static override args = { container: Args.string({ required: true, description: 'container name or ID (prefix)' }) };
  static override flags = {
    follow: Flags.boolean({ char: 'f', description: 'follow log output until the container stops' }),
    tail: Flags.string({ char: 'n', default: 'all', description: 'number of lines to show from the end of the logs' }),
    since: Flags.string({ description: 'show logs since a timestamp (RFC 3339, Unix seconds) or a relative time (10m)' }),
    timestamps: Flags.boolean({ char: 't', description: 'show timestamps' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Logs);
    let tail: number | undefined;
    if (flags.tail !== 'all') {
      tail = Number(flags.tail);
      if (!Number.isInteger(tail)) this.error(`invalid --tail "${flags.tail}": want a number or "all"`, { exit: 1 });
    }
    const ac = new AbortController();
    process.once('SIGINT', () => ac.abort());
    await containerLogs(this.roots(flags), args.container, {
      follow: flags.follow, tail, since: flags.since, timestamps: flags.timestamps, signal: ac.signal,
      write: (s, t) => (s === 'stderr' ? process.stderr : process.stdout).write(t),
    });
  }
}
