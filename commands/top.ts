import { Args } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { containerTop } from '../src/index.js';
import { table } from '../src/cli/format.js';

export default class Top extends TspodCommand {
  static override description = 'display the running processes of a container (host pids)';
  static override args = { container: Args.string({ required: true, description: 'container name or ID (prefix)' }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Top);
    const procs = await containerTop(this.roots(flags), args.container);
    process.stdout.write(table(['UID', 'PID', 'CMD'], procs.map((p) => [String(p.uid), String(p.pid), p.cmd])));
  }
}
