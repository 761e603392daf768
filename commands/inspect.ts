import { Args } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { inspectContainer } from '../src/index.js';
import { messageOf } from '../src/util/errors.js';

export default class Inspect extends TspodCommand {
  static override description = 'display detailed information on one or more containers (JSON)';
  static override strict = false;
  static override args = { container: Args.string({ required: true, description: 'container name or ID (prefix)' }) };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Inspect);
    const out: unknown[] = [];
    let failed = false;
    for (const ref of argv as string[]) {
      try {
        out.push(await inspectContainer(this.roots(flags), ref));
      } catch (err) {
        failed = true;
        process.stderr.write(`tspod: ${messageOf(err)}\n`);
      }
    }
    process.stdout.write(JSON.stringify(out, null, 4) + '\n');
    if (failed) process.exitCode = 1;
  }
}
